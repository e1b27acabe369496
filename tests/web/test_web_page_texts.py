"""Page texts that said something untrue (issue 23.8): the re-confirm page's title, and what the
delete page says a method will no longer do."""

from __future__ import annotations

import re
from collections.abc import Callable

import pyotp
import pytest
from test_web_manage import add_record, enrolled
from webtest import Browser, location

from oidc_combinedreg.methods.kinds import MethodKind

DAY = 86400


def _title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, html[:300]
    return match.group(1)


def test_the_reconfirm_pages_title_is_grammatical(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": True},
            "wizard_preference": ["totp"],
            "sspr": {"enabled_for": "all", "methods": ["totp", "email"], "reconfirm_days": 30},
        }
    )
    browser.login("alice")
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    browser.clock.advance(31 * DAY)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    code = pyotp.TOTP(secret).at(browser.clock.now())
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"], "code": code}
    r = browser.post_json(mfa, {**form, "action": "verify"})
    step = location(browser.get(location(r)))
    assert step.startswith("/security-info/wizard"), step
    assert browser.get_json(step).get_json()["page"] == "reconfirm"
    html = browser.get(step).get_data(as_text=True)
    assert _title(html).startswith("Is your security info still up to date?")
    assert "Are your security info" not in html


@pytest.mark.parametrize(
    ("kind", "data", "says", "never"),
    [
        pytest.param(
            MethodKind.WEBAUTHN, {}, "to sign in any more", "reset your password", id="key"
        ),
        pytest.param(
            MethodKind.EMAIL,
            {"email": "b@example.test"},
            "to reset your password any more",
            "to sign in",
            id="email",
        ),
        pytest.param(
            MethodKind.MOBILE_PHONE,
            {"phone": "+14255550167"},
            "to sign in or reset your password any more",
            "Apps that",
            id="phone",
        ),
        pytest.param(
            MethodKind.APP_PASSWORD, {}, "won't be able to sign in", "reset your password", id="app"
        ),
    ],
)
def test_the_delete_page_says_only_what_the_method_did(
    browser: Browser, kind: MethodKind, data: dict[str, str], says: str, never: str
) -> None:
    enrolled(browser)
    record = add_record(browser, "alice", kind, **data)
    html = browser.get(f"/security-info/methods/{record.id}/delete").get_data(as_text=True)
    html = html.replace("&#39;", "'")
    assert says in html
    assert never not in html.split("<h1>", 1)[1]

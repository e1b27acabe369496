"""Issue 19.9, "Add another method first": suggest only methods that close the gap the delete
would open, and give the page a way back."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape

from test_web_manage import manage
from webtest import Browser, location

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord


def _alice_with_app_and_email(make_browser: Callable[..., Browser]) -> tuple[Browser, str]:
    """alice: an authenticator app (her only MFA method) and an email; reset needs two methods."""
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": True},
            "wizard_preference": ["totp"],
            "sspr": {"enabled_for": "all", "methods_required": 2},
        },
        delivery={"text": {"provider": "console"}},  # a phone can be registered, so suggested
    )
    browser.login("alice")
    email = MethodRecord(id="e1", user_id="alice", kind=MethodKind.EMAIL, label="a•••@example.test",
                         created_at=browser.clock.now(), data={"email": "alice@example.test"})  # fmt: skip
    browser.reg.store.add_method(email, limit=1)
    wizard = location(browser.get(location(browser.authorize())))
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    app = next(m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.TOTP)
    return browser, f"/security-info/methods/{app.id}/delete"


def test_only_methods_that_close_every_gap_are_suggested(
    make_browser: Callable[..., Browser],
) -> None:
    """Deleting the app leaves alice without MFA *and* one reset method short: a security key
    would sign her in but never reset a password, so adding it would not let the delete through."""
    browser, url = _alice_with_app_and_email(make_browser)
    assert "webauthn" in {a["kind"] for a in manage(browser)["addable"]}
    for r in (browser.get_json(url), browser.post_json(url, {"csrf_token": browser.csrf(url)})):
        refused = r.get_json()["refused"]
        assert sorted(refused["shortfalls"]) == ["mfa", "sspr"]
        suggested = [a["kind"] for a in refused["add_first"]]
        assert "mobile_phone" in suggested and "webauthn" not in suggested, suggested
    html = unescape(browser.get(url).get_data(as_text=True))
    assert "Security key or passkey" not in html.split("Add one of these first")[1]


def test_the_refused_page_has_a_way_back(make_browser: Callable[..., Browser]) -> None:
    browser, url = _alice_with_app_and_email(make_browser)
    html = browser.get(url).get_data(as_text=True)
    assert "Add another method first" in html
    assert 'href="/security-info/"' in html.split("Add another method first")[1]

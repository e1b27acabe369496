"""Issue 19.9, "Add another method first": suggest only methods that close the gap the delete
would open, and give the page a way back."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from pathlib import Path

from plain_wsgi_host import DictDirectory, make_app
from test_web_manage import manage
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore


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
    wizard = location(browser.authorize())
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


def test_when_no_one_method_closes_every_gap_each_gap_gets_its_choices(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """alice's phone is her only MFA method and one of the two reset methods (with an email);
    she has the one phone she may have, so nothing she can add closes both gaps: the page lists
    what signs her in and, apart, what resets a password."""
    sender = RecordingSender()
    data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
    data["policies"]["wizard_preference"] = ["mobile_phone"]
    data["policies"]["methods"] = {"security_questions": {"enabled": True}}
    data["policies"]["sspr"] = {"enabled_for": "all", "methods_required": 2,
                                "methods": ["mobile_phone", "email", "security_questions"]}  # fmt: skip
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        parse_config(data), DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    browser = Browser(reg, host, clock)
    browser.login("alice")
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    phone = {"action": "next", "country": "US", "number": "415 555 0123", "channel": "sms"}
    browser.post_json(wizard, {**phone, "csrf_token": token})
    r = browser.post_json(
        wizard, {"action": "verify", "code": sender.last_code(), "csrf_token": token}
    )
    assert r.status_code == 303, r.get_data(as_text=True)
    email = MethodRecord(id="e1", user_id="alice", kind=MethodKind.EMAIL, label="a•••@example.test",
                         created_at=clock.now(), data={"email": "alice@example.test"})  # fmt: skip
    store.add_method(email, limit=1)
    mobile = next(m for m in store.list_methods("alice") if m.kind is MethodKind.MOBILE_PHONE)
    url = f"/security-info/methods/{mobile.id}/delete"
    refused = browser.get_json(url).get_json()["refused"]
    assert sorted(refused["shortfalls"]) == ["mfa", "sspr"]
    assert refused["add_first"] == []
    each = {gap: [a["kind"] for a in kinds] for gap, kinds in refused["add_each"].items()}
    assert "totp" in each["mfa"] and "security_questions" not in each["mfa"]
    assert each["sspr"] == ["security_questions"]
    html = browser.get(url).get_data(as_text=True)
    assert "Add one of these to sign in with a second step:" in html
    assert "Add one of these to reset your password:" in html
    store.close()

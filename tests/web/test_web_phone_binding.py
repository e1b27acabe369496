"""Changing a phone number through the WSGI stack (SECURITY.md case 21).

A changed number is a new binding at AAL2: the change needs fresh MFA, the new number is bound only
when the code sent to it comes back, and until then the old number stays in force for sign-in (a
second session's MFA text still goes to it and still works). The core service has the same rule
(tests/core/test_phone.py); these walk the manage page's change step, a second session, and the
notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from test_web_manage import enrolled
from webtest import Browser, base_config, location, notices

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.sqlite import SqliteStore

ADD = "/security-info/add/mobile_phone"
MFA = "/security-info/mfa"
OLD, NEW = "+14155550123", "+14155550199"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, RecordingSender]]:
    sender = RecordingSender()
    config = parse_config(base_config(tmp_path, delivery={"public_url": "https://idp.test"}))
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        config, DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    yield Browser(reg, host, clock), sender
    store.close()


def _phone(browser: Browser) -> str:
    [record] = [
        m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.MOBILE_PHONE
    ]
    return str(record.data["phone"])


def _with_app_and_phone(browser: Browser, sender: RecordingSender) -> tuple[str, str]:
    """alice registers an app in the wizard, then a phone in manage mode (MFA is fresh):
    (the app's secret, the phone's method id)."""
    secret = enrolled(browser)
    token = browser.csrf(ADD)
    page = browser.post_json(
        ADD,
        {"action": "next", "country": "US", "number": "415 555 0123", "channel": "sms"}
        | {"csrf_token": token},
    ).get_json()
    assert page["page"] == "phone_verify", page
    r = browser.post_json(
        ADD, {"action": "verify", "code": sender.last_code(OLD), "csrf_token": token}
    )
    assert "done=added" in location(r)
    [phone] = [
        m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.MOBILE_PHONE
    ]
    return secret, phone.id


def _fresh_sign_in_with_app(browser: Browser, secret: str) -> None:
    """A new sign-in (password, then the app at the MFA step): MFA is fresh again."""
    browser.clock.advance(700)  # past the gate's freshness window and the last used step
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    others = [m for m in [page["method"], *page["others"]] if m["kind"] == "totp"]
    r = browser.post_json(
        mfa,
        {
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
            "method_id": others[0]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)


def test_a_password_only_session_cannot_start_a_phone_change(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    secret, phone_id = _with_app_and_phone(browser, sender)
    browser.clock.advance(700)
    browser.login("alice")  # a new sign-in, password only: the MFA step is pending
    url = f"/security-info/methods/{phone_id}/change"
    token = browser.csrf(MFA)
    texts = len(sender.texts)
    r = browser.post_json(
        url,
        {"action": "next", "country": "US", "number": "415 555 0199", "channel": "sms"}
        | {"csrf_token": token},
    )
    assert r.status_code == 303 and location(r) == MFA
    assert len(sender.texts) == texts  # nothing was sent to the new number
    assert _phone(browser) == OLD
    # After MFA with the app the same session may change it.
    page = browser.get_json(MFA).get_json()
    app = next(m for m in [page["method"], *page["others"]] if m["kind"] == "totp")
    browser.post_json(
        MFA,
        {"code": pyotp.TOTP(secret).at(browser.clock.now()), "method_id": app["id"]}
        | {"csrf_token": token},
    )
    assert browser.get_json(url).get_json()["page"] == "phone_enter"


def test_the_new_number_is_bound_only_by_its_own_code_and_the_old_one_serves_until_then(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    secret, phone_id = _with_app_and_phone(browser, sender)
    _fresh_sign_in_with_app(browser, secret)
    url = f"/security-info/methods/{phone_id}/change"
    token = browser.csrf(url)
    page = browser.post_json(
        url,
        {"action": "next", "country": "US", "number": "415 555 0199", "channel": "sms"}
        | {"csrf_token": token},
    ).get_json()
    assert page["page"] == "phone_verify" and page["changing"] == phone_id
    assert sender.texts[-1].to == NEW
    assert _phone(browser) == OLD  # pending, not bound

    # Meanwhile another sign-in of alice passes MFA by text: the code goes to the OLD number.
    other = Browser(browser.reg, browser.host, browser.clock)
    other.login("alice")
    other_mfa = location(other.authorize())
    mfa_page = other.get_json(other_mfa).get_json()
    by_phone = next(m for m in [mfa_page["method"], *mfa_page["others"]] if m["id"] == phone_id)
    start = {"method_id": by_phone["id"], "csrf_token": mfa_page["csrf_token"]}
    started = other.post_json(other_mfa, {**start, "action": "start", "via": "sms"})
    assert started.status_code == 200, started.get_data(as_text=True)
    assert sender.texts[-1].to == OLD
    old_code = sender.last_code(OLD)

    # The code sent to the old number does not confirm the new one; a wrong code neither.
    for wrong in (old_code, "000000"):
        r = browser.post_json(url, {"action": "verify", "code": wrong, "csrf_token": token})
        assert r.status_code == 400
        assert r.get_json()["errors"]["code"], r.get_json()  # refused as a code, not a CSRF
        assert _phone(browser) == OLD
    # ... and the other session's code was not used up by that attempt: its MFA passes.
    r = other.post_json(other_mfa, {**start, "action": "verify", "code": old_code})
    assert r.status_code == 303

    # The new number's own code binds it, in place (same method id), audited and told.
    r = browser.post_json(
        url, {"action": "verify", "code": sender.last_code(NEW), "csrf_token": token}
    )
    assert location(r) == "/security-info/?done=changed"
    assert _phone(browser) == NEW
    [record] = [m for m in browser.reg.store.list_methods("alice") if m.id == phone_id]
    assert record.kind is MethodKind.MOBILE_PHONE
    [changed] = browser.reg.store.list_audit(
        user_id="alice", event_prefix="method.changed", limit=5
    )
    assert changed.detail["method_id"] == phone_id
    assert notices(browser.reg.store, "alice")[-1][:2] == ("changed", "mobile_phone")
    assert OLD not in str(changed.detail) and NEW not in str(changed.detail)  # masked only

    # From now on MFA by text goes to the new number.
    browser.clock.advance(60)
    third = Browser(browser.reg, browser.host, browser.clock)
    third.login("alice")
    third_mfa = location(third.authorize())
    p = third.get_json(third_mfa).get_json()
    third.post_json(
        third_mfa,
        {"action": "start", "via": "sms", "method_id": phone_id, "csrf_token": p["csrf_token"]},
    )
    assert sender.texts[-1].to == NEW


def test_an_abandoned_change_leaves_the_old_number(env: tuple[Browser, RecordingSender]) -> None:
    browser, sender = env
    secret, phone_id = _with_app_and_phone(browser, sender)
    _fresh_sign_in_with_app(browser, secret)
    url = f"/security-info/methods/{phone_id}/change"
    token = browser.csrf(url)
    browser.post_json(
        url,
        {"action": "next", "country": "US", "number": "415 555 0199", "channel": "sms"}
        | {"csrf_token": token},
    )
    new_code = sender.last_code(NEW)
    # The code expires (10 minutes) before it comes back. By then MFA is no longer fresh: the
    # gate asks again first, and even after that the stale code binds nothing.
    browser.clock.advance(601)
    r = browser.post_json(url, {"action": "verify", "code": new_code, "csrf_token": token})
    assert r.status_code == 303 and location(r) == MFA
    page = browser.get_json(MFA).get_json()
    app = next(m for m in [page["method"], *page["others"]] if m["kind"] == "totp")
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(MFA, {"code": code, "method_id": app["id"], "csrf_token": token})
    assert r.status_code == 303
    r = browser.post_json(url, {"action": "verify", "code": new_code, "csrf_token": token})
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["errors"]["code"] == "This code has expired. Send a new one."
    assert _phone(browser) == OLD
    assert browser.reg.store.list_audit(user_id="alice", event_prefix="method.changed") == []


def test_an_email_change_binds_only_with_the_new_addresss_code(
    env: tuple[Browser, RecordingSender],
) -> None:
    """The same rule for the password-reset email (case 21): the old address stays until the code
    sent to the new one comes back; the change is told to both addresses."""
    browser, sender = env
    enrolled(browser)
    add = "/security-info/add/email"
    token = browser.csrf(add)
    browser.post_json(add, {"action": "next", "email": "old@example.com", "csrf_token": token})
    r = browser.post_json(
        add,
        {"action": "verify", "code": sender.last_code("old@example.com"), "csrf_token": token},
    )
    assert "done=added" in location(r)
    [email] = [m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.EMAIL]

    url = f"/security-info/methods/{email.id}/change"
    token = browser.csrf(url)
    page = browser.post_json(
        url, {"action": "next", "email": "new@example.com", "csrf_token": token}
    ).get_json()
    assert page["page"] == "email_verify", page

    def address() -> str:
        record = browser.reg.store.get_method("alice", email.id)
        assert record is not None
        return str(record.data["email"])

    assert address() == "old@example.com"
    for wrong in ("000000", sender.last_code("old@example.com")):
        r = browser.post_json(url, {"action": "verify", "code": wrong, "csrf_token": token})
        assert r.status_code == 400 and address() == "old@example.com"
    r = browser.post_json(
        url,
        {"action": "verify", "code": sender.last_code("new@example.com"), "csrf_token": token},
    )
    assert location(r) == "/security-info/?done=changed"
    assert address() == "new@example.com"
    told = {m.to for m in sender.emails if m.tag == "security_info_changed"}
    assert {"old@example.com", "new@example.com"} <= told

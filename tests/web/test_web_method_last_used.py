"""Every method records its use: an MFA or password-reset success with it sets ``last_used_at``
(decision 193), written with the success's audit event where the method has no counter to
advance, so the security-info page says "Last used <today>", never "Not used yet" after use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from reset_helpers import RESET, Reset, ResetEnv, add_email, add_questions, add_totp, make_env
from test_web_manage import SECURITY_INFO, manage
from test_web_phone import _add_phone
from test_web_push import _mfa_sign_in, _start_push, _verify, enroll, push_methods
from test_web_webauthn import _add_key, _enrolled, _keys, _mfa_with_key
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.soft_authenticator import SoftAuthenticator
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore


def _shown(browser: Browser, method_id: str) -> dict[str, Any]:
    (shown,) = [m for m in manage(browser)["methods"] if m["id"] == method_id]
    return dict(shown)


def _last_used(store: Any, user: str, method_id: str) -> float | None:
    record: MethodRecord | None = store.get_method(user, method_id)
    assert record is not None
    return record.last_used_at


def test_an_approved_push_sign_in_shows_the_device_used_today(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    (record,) = push_methods(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    device.respond(request, page["challenge"]["number"], "approve")
    browser.clock.advance(5)  # "Check again" a little later: the use is the MFA step's success
    assert _verify(browser, mfa, page).status_code == 303
    used_at = browser.clock.now()
    browser.get(location(browser.authorize()))
    assert _shown(browser, record.id)["last_used_at"] == int(used_at)
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert "Not used yet" not in html and "not used yet" not in html
    # The success's audit event is still there, once.
    succeeded = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.succeeded")
    assert [e.detail["method_id"] for e in succeeded].count(record.id) == 2  # set up, now


def test_a_refused_push_request_records_no_use(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    (record,) = push_methods(browser)
    before = record.last_used_at
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    device.respond(request, page["challenge"]["number"], "deny")
    assert _verify(browser, mfa, page).status_code == 400
    assert _last_used(browser.reg.store, "alice", record.id) == before


def test_the_push_apps_offline_code_records_use(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    (record,) = push_methods(browser)
    mfa = _mfa_sign_in(browser)
    browser.clock.advance(30)  # a time step no code used yet
    page = browser.get_json(mfa).get_json()
    code = pyotp.TOTP(device.state.totp_secret).at(browser.clock.now())
    body = {"action": "verify", "method_id": record.id, "code": code}
    r = browser.post_json(mfa, {**body, "csrf_token": page["csrf_token"]})
    assert r.status_code == 303, r.get_json()
    assert _last_used(browser.reg.store, "alice", record.id) == browser.clock.now()


def test_a_security_key_without_a_sign_counter_records_use(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    (key,) = _keys(browser)
    browser.clock.advance(60)
    _, r, _, _ = _mfa_with_key(browser, auth, counter=0)  # a passkey: its counter stays 0
    assert r.status_code == 303
    assert _last_used(browser.reg.store, "alice", key.id) == browser.clock.now()
    succeeded = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.succeeded")
    assert [e.detail.get("method_id") for e in succeeded].count(key.id) == 1


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    return make_env(tmp_path, clock, monkeypatch, required=2)


def test_a_password_reset_with_email_and_questions_records_their_use(env: ResetEnv) -> None:
    add_email(env.reg, "alice")
    answers = add_questions(env.reg, "alice")
    env.browser.clock.advance(3600)
    flow = Reset(env.browser)
    flow.start("alice")
    page = flow.choose("questions")
    r = flow.verify(answers=[answers[q] for q in page["questions"]])
    assert location(r) == f"{RESET}/method"
    flow.choose("email")
    code = env.sender.last_code(to="alice.private@example.test")
    assert flow.verify(code=code).status_code == 303
    now = env.browser.clock.now()
    used = {m.kind.value: m.last_used_at for m in env.store.list_methods("alice")}
    assert used == {"email": now, "security_questions": now}
    passed = env.store.list_audit(user_id="alice", event_prefix="reset.method_passed")
    assert sorted(e.detail["kind"] for e in passed) == ["email", "security_questions"]


@pytest.fixture
def phone_env(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, RecordingSender]]:
    sender = RecordingSender()
    config = parse_config(base_config(tmp_path, delivery={"public_url": "https://idp.test"}))
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        config, DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    yield Browser(reg, host, clock), sender
    store.close()


def _phone_mfa(browser: Browser) -> tuple[str, dict[str, Any]]:
    browser.clock.advance(120)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    (phone,) = [m for m in [page["method"], *page["others"]] if m["kind"] == "mobile_phone"]
    body = {"method_id": phone["id"], "csrf_token": page["csrf_token"]}
    assert browser.post_json(mfa, {**body, "action": "start", "via": "sms"}).status_code == 200
    return mfa, body


def test_a_text_code_records_the_phones_use_with_its_success(
    phone_env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = phone_env
    _add_phone(browser, sender)
    (record,) = browser.reg.store.list_methods("alice")
    mfa, body = _phone_mfa(browser)
    r = browser.post_json(mfa, {**body, "action": "verify", "code": sender.last_code()})
    assert r.status_code == 303
    assert _last_used(browser.reg.store, "alice", record.id) == browser.clock.now()
    succeeded = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.succeeded")
    assert [e.detail["method_id"] for e in succeeded] == [record.id]


def test_a_phone_removed_after_its_code_was_sent_signs_nobody_in(
    phone_env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = phone_env
    _add_phone(browser, sender)
    (record,) = browser.reg.store.list_methods("alice")
    add_totp(browser.reg, "alice")  # MFA is still asked once the phone is gone
    mfa, body = _phone_mfa(browser)
    # The owner removes the phone (it was stolen) while a code to it is still valid.
    assert browser.reg.store.delete_method("alice", record.id)
    r = browser.post_json(mfa, {**body, "action": "verify", "code": sender.last_code()})
    assert r.status_code == 400
    assert browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.succeeded") == []

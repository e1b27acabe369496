""" "This wasn't me" suspends what the reported change added or changed (SECURITY.md case 59):
in the same store write that ends the sessions; a delete or a rename suspends nothing."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace

import pytest
from codes_env import Env, make_env

from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.exceptions import LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.notify import RESET_FLAG, _token_key
from oidc_combinedreg.store import MethodRecord, UserState


@pytest.fixture
def env() -> Env:
    return make_env()


def _tokens(env: Env) -> list[str]:
    texts = [m.text for m in env.sender.emails if m.tag == "security_info_changed"]
    return [re.search(r"/not-me/(\S+)", t).group(1) for t in texts]  # type: ignore[union-attr]


def _add_phone(env: Env, number: str = "4155550123") -> str:
    _, state = env.info.mobile_phone.register_begin(
        "alice", number=number, region="US", channel="sms", ip="198.51.100.7"
    )
    return env.info.mobile_phone.register_complete(
        "alice", state, env.sender.last_code(), ip="198.51.100.7"
    ).id


def test_reporting_an_added_phone_suspends_it_with_the_sessions(env: Env) -> None:
    env.store.save_session("s1", {"uid": "alice"}, user_id="alice", ttl=3600)
    phone = _add_phone(env)
    [token] = _tokens(env)
    report = env.info.notifier.not_me_report(token, ip="192.0.2.50")
    assert report is not None
    assert (report.user_id, report.suspended, report.sessions_revoked) == ("alice", (phone,), 1)
    assert env.store.list_methods("alice") == []
    assert [m.id for m in env.info.reported_methods("alice")] == [phone]
    assert env.store.get_user_state("alice").extra[RESET_FLAG] is True
    [flagged] = env.store.list_audit(event_prefix="account.flagged")
    assert flagged.detail["methods_suspended"] == [phone]
    [revoked] = env.store.list_audit(event_prefix="session.revoked_all")
    assert revoked.detail == {"count": 1, "reason": "not_me"}


def test_a_changed_phone_is_suspended_with_its_new_number(env: Env) -> None:
    phone = _add_phone(env)
    env.clock.advance(61)
    env.sender.clear()
    _, state = env.info.mobile_phone.register_begin(
        "alice", number="4155550999", region="US", channel="sms", ip=None, replace_id=phone
    )
    env.info.mobile_phone.register_complete("alice", state, env.sender.last_code(), ip=None)
    [token] = _tokens(env)
    assert env.info.notifier.not_me_confirm(token, ip=None) == "alice"
    [reported] = env.info.reported_methods("alice")
    assert reported.id == phone and reported.data["phone"] == "+14155550999"
    assert env.store.list_methods("alice") == []


def test_a_delete_notice_suspends_nothing_but_still_secures_the_account(env: Env) -> None:
    keep = _add_phone(env)
    _, state = env.info.email.register_begin("alice", address="a@home.example", ip=None)
    email = env.info.email.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.sender.clear()
    assert env.info.delete_method("alice", email.id, ip=None)
    env.store.save_session("s1", {}, user_id="alice", ttl=3600)
    token = _tokens(env)[0]  # the old address hears of it too: one link each
    report = env.info.notifier.not_me_report(token, ip=None)
    assert report is not None and report.suspended == () and report.sessions_revoked == 1
    assert [m.id for m in env.store.list_methods("alice")] == [keep]
    assert env.store.get_user_state("alice").extra[RESET_FLAG] is True


def test_a_report_after_the_method_was_deleted_still_ends_the_sessions(env: Env) -> None:
    phone = _add_phone(env)
    [token] = _tokens(env)
    assert env.info.delete_method("alice", phone, ip=None)
    env.store.save_session("s1", {}, user_id="alice", ttl=3600)
    report = env.info.notifier.not_me_report(token, ip=None)
    assert report is not None and report.suspended == () and report.sessions_revoked == 1
    assert env.info.reported_methods("alice") == []


def test_a_link_sent_before_links_named_their_methods_finds_its_notice(env: Env) -> None:
    phone = _add_phone(env)
    [token] = _tokens(env)
    # What an older build stored for the link: the user and the notice's outbox id only.
    key = _token_key(token)
    data = env.store.take_challenge(key)
    assert data is not None and data.pop("suspend") == [phone]
    env.store.put_challenge(key, data, ttl=3600)
    report = env.info.notifier.not_me_report(token, ip=None)
    assert report is not None and report.suspended == (phone,)


def test_restore_brings_it_back_audited_and_tells_the_user(env: Env) -> None:
    phone = _add_phone(env)
    [token] = _tokens(env)
    env.info.notifier.not_me_confirm(token, ip=None)
    env.sender.clear()
    restored = env.info.restore_reported("alice", phone, actor="admin:ops", ip="203.0.113.9")
    assert restored is not None and restored.reported_at is None
    assert [m.id for m in env.store.list_methods("alice")] == [phone]
    [event] = env.store.list_audit(event_prefix="method.restored")
    assert event.detail["actor"] == "admin:ops" and event.ip == "203.0.113.9"
    [notice] = [m.text for m in env.sender.emails if m.tag == "security_info_changed"]
    assert "was restored to your account by your administrator" in notice
    assert env.info.restore_reported("alice", phone, actor="admin:ops", ip=None) is None


def test_restore_is_refused_when_the_user_registered_that_kind_again(env: Env) -> None:
    phone = _add_phone(env)
    [token] = _tokens(env)
    env.info.notifier.not_me_confirm(token, ip=None)
    env.clock.advance(61)
    _add_phone(env, "4155550444")
    with pytest.raises(LimitReached):
        env.info.restore_reported("alice", phone, actor="admin:ops", ip=None)
    assert [m.id for m in env.info.reported_methods("alice")] == [phone]


def test_the_user_deletes_a_reported_method(env: Env) -> None:
    phone = _add_phone(env)
    [token] = _tokens(env)
    env.info.notifier.not_me_confirm(token, ip=None)
    assert env.info.delete_reported("alice", phone, ip=None) is True
    assert env.info.reported_methods("alice") == []
    [deleted] = env.store.list_audit(event_prefix="method.deleted")
    assert deleted.detail["reported"] is True
    assert env.info.delete_reported("alice", phone, ip=None) is False


@pytest.mark.parametrize(
    ("kind", "lookup"),
    [
        (MethodKind.TOTP, None),
        (MethodKind.PUSH, "push:device-1"),
        (MethodKind.MOBILE_PHONE, None),
        (MethodKind.HARDWARE_OATH, "oath:serial-1"),
        (MethodKind.WEBAUTHN, "cred-1"),
    ],
)
def test_a_reported_method_of_any_kind_is_out_of_mfa_reset_and_the_default(
    env: Env, kind: MethodKind, lookup: str | None
) -> None:
    record = MethodRecord(
        id=secrets.token_urlsafe(12),
        user_id="alice",
        kind=kind,
        label="attacker",
        created_at=env.clock.now(),
        data={"phone": "+14155550199"} if kind is MethodKind.MOBILE_PHONE else {},
        lookup=lookup,
    )
    env.store.add_method(record, limit=10)
    env.store.put_user_state(UserState(user_id="alice", default_method_id=record.id))
    assert env.info.mfa_method("alice", record.id) is not None  # before: usable
    env.store.report_methods(env.store.get_user_state("alice"), [record.id], at=env.clock.now())
    assert env.info.mfa_method("alice", record.id) is None
    assert record.id not in [m.id for m in env.info.mfa_methods("alice")]
    assert env.info.default_method("alice", env.info.methods("alice")) is None
    assert env.info.set_default("alice", record.id, ip=None) is False
    if lookup is not None:
        assert env.store.find_method_by_lookup(lookup) is None
    # password reset's facts and the wizard's counts read the same methods in use
    assert env.info.methods("alice") == []


def test_a_reported_app_password_no_longer_signs_in(env: Env) -> None:
    env.directory.users["alice"] = replace(
        env.directory.users["alice"], per_user_mfa=PerUserMfa.ENFORCED
    )
    service = env.info.app_passwords
    service.hasher = fast_hasher_for_tests()
    user = env.directory.users["alice"]
    setup, record = service.register(user, "mail client", ip=None)
    assert service.check("alice", setup.password, ip=None) is True
    [token] = _tokens(env)
    assert env.info.notifier.not_me_confirm(token, ip=None) == "alice"
    assert service.check("alice", setup.password, ip=None) is False
    assert [m.id for m in env.info.reported_methods("alice")] == [record.id]

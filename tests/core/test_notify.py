"""The "Your security info changed" notification, its outbox, and "This wasn't me" (SECURITY.md
cases 17 and 55)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from codes_env import Env, make_env

from oidc_combinedreg.crypto import random_id
from oidc_combinedreg.delivery.base import Channel
from oidc_combinedreg.exceptions import LimitReached, MethodsChanged, StoreUnavailable
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.notify import RESET_FLAG
from oidc_combinedreg.store import MethodRecord


@pytest.fixture
def env() -> Env:
    return make_env()


def _notices(env: Env) -> list[tuple[str, str]]:
    return [(m.to, m.text) for m in env.sender.emails if m.tag == "security_info_changed"]


def _add_phone(env: Env, number: str = "4155550123") -> str:
    _, state = env.info.mobile_phone.register_begin(
        "alice", number=number, region="US", channel="sms", ip="198.51.100.7"
    )
    record = env.info.mobile_phone.register_complete(
        "alice", state, env.sender.last_code(), ip="198.51.100.7"
    )
    return record.id


def test_an_added_phone_notifies_the_directory_address_with_time_ip_and_a_link(env: Env) -> None:
    _add_phone(env)
    [(to, text)] = _notices(env)
    assert to == "alice@corp.example"
    assert "Phone (+1 XXXXXXXX23) was added" in text and "198.51.100.7" in text
    assert "2023-11-14 22:13 UTC" in text
    assert re.search(r"https://idp\.example\.test/security-info/not-me/\S+", text)
    queued = env.store.list_audit(event_prefix="notify.queued")
    sent = env.store.list_audit(event_prefix="notify.sent")
    assert len(queued) == 1 and sent[0].detail["outbox_id"] == queued[0].detail["outbox_id"]


def test_changing_the_email_tells_the_old_and_the_new_address(env: Env) -> None:
    svc = env.info.email
    _, state = svc.register_begin("alice", address="old@home.example", ip=None)
    record = svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    env.sender.clear()
    env.clock.advance(61)
    _, state = svc.register_begin(
        "alice", address="new@home.example", ip=None, replace_id=record.id
    )
    svc.register_complete("alice", state, env.sender.last_code(), ip=None)
    assert sorted(to for to, _ in _notices(env)) == [
        "alice@corp.example",
        "new@home.example",
        "old@home.example",
    ]


def test_deleting_notifies_too(env: Env) -> None:
    method_id = _add_phone(env)
    env.sender.clear()
    assert env.info.delete_method("alice", method_id, ip="203.0.113.1")
    [(to, text)] = _notices(env)
    assert "was removed" in text and "203.0.113.1" in text


def test_a_delete_whose_methods_changed_after_its_check_checks_again(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request adds a method between the compliance check and the delete: the store
    refuses the delete (``if_methods``), the service checks again and deletes, notifying once."""
    method_id = _add_phone(env)
    real, calls = env.store.delete_method, []

    def racing_delete(*args: Any, **kwargs: Any) -> bool:
        calls.append(kwargs["if_methods"])
        if len(calls) == 1:
            other = MethodRecord(id=random_id(), user_id="alice", kind=MethodKind.TOTP,
                                 label="App", created_at=env.clock.now())  # fmt: skip
            env.store.add_method(other, limit=5)
        return real(*args, **kwargs)

    monkeypatch.setattr(env.store, "delete_method", racing_delete)
    env.sender.clear()
    assert env.info.delete_method("alice", method_id, ip=None)
    assert [len(seen) for seen in calls] == [1, 2]
    assert [m.kind for m in env.store.list_methods("alice")] == [MethodKind.TOTP]
    assert len([t for _, t in _notices(env) if "was removed" in t]) == 1


def test_a_delete_whose_methods_keep_changing_gives_up_with_a_clear_error(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    method_id = _add_phone(env)
    monkeypatch.setattr(env.store, "delete_method", _always_changed)
    env.sender.clear()
    with pytest.raises(StoreUnavailable, match="kept changing"):
        env.info.delete_method("alice", method_id, ip=None)
    assert [m.id for m in env.store.list_methods("alice")] == [method_id]
    assert _notices(env) == []


def _always_changed(*args: Any, **kwargs: Any) -> bool:
    raise MethodsChanged("changed again")


def test_a_change_that_is_rolled_back_queues_and_sends_nothing(env: Env) -> None:
    # Two tabs each start adding an alternate phone (the limit is 1); the second commit fails.
    svc = env.info.alternate_phone
    _, first = svc.register_begin(
        "alice", number="4155550888", region="US", channel="voice", ip=None
    )
    first_code = env.sender.last_code("+14155550888")
    _, second = svc.register_begin(
        "alice", number="4155550999", region="US", channel="voice", ip=None
    )
    second_code = env.sender.last_code("+14155550999")
    svc.register_complete("alice", first, first_code, ip=None)
    queued = len(env.store.list_audit(event_prefix="notify.queued"))
    env.sender.clear()
    with pytest.raises(LimitReached):
        svc.register_complete("alice", second, second_code, ip=None)
    assert _notices(env) == []
    assert len(env.store.list_audit(event_prefix="notify.queued")) == queued
    assert [m.data["phone"] for m in env.store.list_methods("alice")] == ["+14155550888"]


def test_a_failed_notice_is_queued_then_sent_by_the_outbox(env: Env) -> None:
    env.sender.fail_next(Channel.EMAIL, "cannot reach the mail server")
    env.sender.fail_next(Channel.EMAIL, "cannot reach the mail server")
    _add_phone(env)  # the change itself succeeds
    assert _notices(env) == []
    assert env.store.list_audit(event_prefix="notify.failed")
    assert len(env.info.notifier.pending()) == 1
    assert env.info.notifier.flush() == 1
    assert len(_notices(env)) == 1 and env.info.notifier.pending() == []


def test_this_wasnt_me_revokes_sessions_flags_the_account_and_asks_for_a_reset(env: Env) -> None:
    env.store.save_session("s1", {"uid": "alice"}, user_id="alice", ttl=3600)
    _add_phone(env)
    [(_, text)] = _notices(env)
    token = re.search(r"/not-me/(\S+)", text).group(1)  # type: ignore[union-attr]
    notifier = env.info.notifier
    assert notifier.not_me_user(token) == "alice"  # looking does not use it
    assert notifier.not_me_confirm(token, ip="192.0.2.50") == "alice"
    assert env.store.load_session("s1") is None
    assert env.store.get_user_state("alice").extra[RESET_FLAG] is True
    flagged = env.store.list_audit(event_prefix="account.flagged")
    assert flagged and flagged[0].ip == "192.0.2.50"
    assert notifier.not_me_confirm(token, ip=None) is None  # single use
    assert notifier.not_me_user("not-a-real-token-at-all") is None


def test_no_address_no_provider_means_skipped_not_pending() -> None:
    env = make_env()
    env.directory.users["alice"] = env.directory.users["bob"].__class__(id="alice")
    _add_phone(env)
    assert env.store.list_audit(event_prefix="notify.skipped")
    assert env.info.notifier.pending() == []
    assert [m.kind for m in env.store.list_methods("alice")] == [MethodKind.MOBILE_PHONE]

"""Store contract: "This wasn't me" suspends the reported methods in the same write that ends the
user's sessions (SECURITY.md case 59); a reported method is out of use until deleted or restored."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from store_helpers import T0, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import InvalidInput, LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import Store, UserState
from oidc_combinedreg.store.redis import RedisStore

FLAGGED = UserState(user_id="alice", extra={"password_reset_required": True})


def _report(store: Store, *ids: str) -> int:
    return store.report_methods(
        FLAGGED, ids, at=T0 + 1, events=[event("account.flagged", outcome="info")]
    )


def test_a_reported_method_is_out_of_every_read_of_methods_in_use(store: Store) -> None:
    own = method(label="mine")
    attackers = method(label="attacker", lookup="cred-9", counter=5)
    store.add_method(own, limit=5)
    store.add_method(attackers, limit=5)
    _report(store, attackers.id)
    assert [m.id for m in store.list_methods("alice")] == [own.id]
    assert store.get_method("alice", attackers.id) is None
    assert store.find_method_by_lookup("cred-9") is None
    # it cannot be used, changed or advanced while reported
    assert store.advance_counter("alice", attackers.id, 99, T0, events=[event()]) is False
    assert store.update_method(replace(attackers, label="renamed")) is False
    reported = store.list_reported_methods("alice")
    assert [(m.id, m.label, m.reported_at) for m in reported] == [
        (attackers.id, "attacker", T0 + 1)
    ]
    assert replace(reported[0], reported_at=None) == attackers
    assert store.list_reported_methods("bob") == []


def test_a_report_ends_the_sessions_and_stores_the_state_and_events_together(
    store: Store, clock: FrozenClock
) -> None:
    record = method()
    store.add_method(record, limit=5)
    store.save_session("s1", {"a": 1}, user_id="alice", ttl=60)
    store.save_session("s2", {"a": 2}, user_id="alice", ttl=60)
    store.save_session("s3", {"b": 1}, user_id="bob", ttl=60)
    assert _report(store, record.id) == 2
    assert store.load_session("s1") is None and store.load_session("s2") is None
    assert store.load_session("s3") == {"b": 1}
    assert store.get_user_state("alice").extra == {"password_reset_required": True}
    assert [e.event for e in store.list_audit(user_id="alice")] == ["account.flagged"]
    # a session of the user saved back after the report stays ended
    assert store.save_session("s1", {"a": 9}, user_id="alice", ttl=60, create=False) is False


def test_a_report_of_nothing_or_of_a_deleted_method_still_ends_the_sessions(store: Store) -> None:
    record = method()
    store.add_method(record, limit=5)
    store.save_session("s1", {}, user_id="alice", ttl=60)
    assert _report(store, "gone-id") == 1
    assert [m.id for m in store.list_methods("alice")] == [record.id]
    assert store.list_reported_methods("alice") == []
    store.save_session("s2", {}, user_id="alice", ttl=60)
    assert _report(store) == 1
    assert store.get_user_state("alice").extra["password_reset_required"] is True


def test_another_users_method_id_is_never_suspended(store: Store) -> None:
    bobs = method(user_id="bob")
    store.add_method(bobs, limit=5)
    _report(store, bobs.id)
    assert [m.id for m in store.list_methods("bob")] == [bobs.id]
    assert store.list_reported_methods("alice") == []


def test_reporting_twice_keeps_the_first_report_time(store: Store) -> None:
    record = method()
    store.add_method(record, limit=5)
    _report(store, record.id)
    store.report_methods(FLAGGED, [record.id], at=T0 + 50)
    assert [m.reported_at for m in store.list_reported_methods("alice")] == [T0 + 1]


def test_a_reported_method_does_not_count_towards_the_limit(store: Store) -> None:
    phone = method(kind=MethodKind.MOBILE_PHONE)
    store.add_method(phone, limit=1)
    _report(store, phone.id)
    again = method(kind=MethodKind.MOBILE_PHONE)
    store.add_method(again, limit=1)  # the user registers their own phone again
    assert [m.id for m in store.list_methods("alice")] == [again.id]


def test_restore_brings_a_reported_method_back_with_its_events(store: Store) -> None:
    record = method(lookup="serial-1", counter=7)
    store.add_method(record, limit=5)
    _report(store, record.id)
    assert store.restore_method("alice", record.id, limit=5, events=[event("method.restored")])
    assert store.list_methods("alice") == [record]
    assert store.find_method_by_lookup("serial-1") == record
    assert store.list_reported_methods("alice") == []
    assert store.list_audit(user_id="alice", event_prefix="method.")[0].event == "method.restored"
    # once only; an in-use method or another user's is not "restored"
    assert store.restore_method("alice", record.id, limit=5) is False
    assert store.restore_method("bob", record.id, limit=5) is False


def test_restore_is_refused_when_the_kind_is_full_again(store: Store) -> None:
    phone = method(kind=MethodKind.MOBILE_PHONE)
    store.add_method(phone, limit=1)
    _report(store, phone.id)
    store.add_method(method(kind=MethodKind.MOBILE_PHONE), limit=1)
    with pytest.raises(LimitReached):
        store.restore_method("alice", phone.id, limit=1, events=[event("method.restored")])
    assert [m.id for m in store.list_reported_methods("alice")] == [phone.id]
    assert store.list_audit(user_id="alice", event_prefix="method.restored") == []


def test_a_reported_method_can_be_deleted_and_its_lookup_stays_taken_until_then(
    store: Store, clock: FrozenClock
) -> None:
    record = method(lookup="cred-1")
    store.add_method(record, limit=5)
    _report(store, record.id)
    clock.advance(3600)  # past any grace for an orphaned lookup claim
    with pytest.raises(InvalidInput):
        store.add_method(method(user_id="bob", lookup="cred-1"), limit=5)
    assert store.delete_method("alice", record.id, events=[event("method.deleted")]) is True
    assert store.list_reported_methods("alice") == []
    assert store.delete_method("alice", record.id) is False
    store.add_method(method(user_id="bob", lookup="cred-1"), limit=5)


def test_a_conditional_delete_compares_the_methods_in_use_only(store: Store) -> None:
    keep, reported = method(), method()
    store.add_method(keep, limit=5)
    store.add_method(reported, limit=5)
    _report(store, reported.id)
    extra = method(kind=MethodKind.EMAIL)
    store.add_method(extra, limit=5)
    assert store.delete_method("alice", extra.id, if_methods=[keep.id, extra.id]) is True


def test_a_code_check_racing_a_report_never_succeeds_after_it(store: Store) -> None:
    # Whatever the order, once the report is written the method's counter no longer moves.
    record = method()
    store.add_method(record, limit=5)

    def act(i: int) -> object:
        if i == 0:
            return _report(store, record.id)
        return store.advance_counter("alice", record.id, i, T0)

    race(8, act)
    (reported,) = store.list_reported_methods("alice")
    assert store.advance_counter("alice", record.id, 1_000, T0) is False
    assert store.list_reported_methods("alice")[0].counter == reported.counter


def test_redis_reads_the_session_index_again_when_it_changed_before_the_script(
    store: Store,
) -> None:
    # One Redis server: the script gets the session keys the index held when read, and refuses
    # a list the index no longer matches (a session saved in between), so none escapes the end.
    if not isinstance(store, RedisStore) or store._cluster:
        pytest.skip("the one-server script's check")
    store.save_session("s1", {}, user_id="alice", ttl=60)
    store.save_session("s2", {}, user_id="alice", ttl=60)
    client = store._client
    real = client.zrange
    reads: list[int] = []

    def stale_first(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        found = real(*args, **kwargs)
        return found[:1] if len(reads) == 1 else found  # the first read misses s2

    client.zrange = stale_first  # type: ignore[method-assign]
    try:
        assert _report(store) == 2
    finally:
        client.zrange = real  # type: ignore[method-assign]
    assert len(reads) == 2
    assert store.load_session("s1") is None and store.load_session("s2") is None

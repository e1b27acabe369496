"""Store contract: registered methods, per-kind limits, lookups, counters and their audit events."""

from __future__ import annotations

import pytest
from store_helpers import T0, event, method, race

from oidc_combinedreg.exceptions import InvalidInput, LimitReached, MethodsChanged
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import MethodRecord, Store


def test_an_added_method_reads_back_with_every_field(store: Store) -> None:
    record = method(
        label="Pixel 8",
        data={"issuer": "Example", "digits": 6, "nested": {"a": [1, 2]}},
        secret=b"\x00\x01encrypted\xff",
        counter=7,
        last_used_at=T0 + 5,
        lookup="cred-1",
    )
    store.add_method(record, limit=5)
    assert store.get_method("alice", record.id) == record
    assert store.list_methods("alice") == [record]
    assert store.find_method_by_lookup("cred-1") == record


def test_methods_are_listed_oldest_first_and_only_the_users_own(store: Store) -> None:
    newer = method(created_at=T0 + 10)
    older = method(kind=MethodKind.EMAIL, created_at=T0)
    same_time = method(kind=MethodKind.MOBILE_PHONE, created_at=T0 + 10)
    for record in (newer, older, same_time):
        store.add_method(record, limit=5)
    store.add_method(method(user_id="bob"), limit=5)
    assert [m.id for m in store.list_methods("alice")] == [older.id, newer.id, same_time.id]
    assert store.list_methods("nobody") == []


def test_returned_data_is_a_copy(store: Store) -> None:
    record = method(data={"phone": "+15550100"})
    store.add_method(record, limit=5)
    got = store.get_method("alice", record.id)
    assert got is not None
    got.data["phone"] = "+15550199"  # type: ignore[index]
    again = store.get_method("alice", record.id)
    assert again is not None and again.data == {"phone": "+15550100"}


# -- IDOR: another user's method id is never reachable --------------------------------------------


def test_another_users_method_cannot_be_read_changed_deleted_or_advanced(store: Store) -> None:
    alices = method(label="mine", counter=3)
    store.add_method(alices, limit=5)
    as_bob = MethodRecord(
        id=alices.id, user_id="bob", kind=alices.kind, label="stolen", created_at=T0
    )
    assert store.get_method("bob", alices.id) is None
    assert store.update_method(as_bob, events=[event("method.changed", "bob")]) is False
    assert store.delete_method("bob", alices.id, events=[event("method.deleted", "bob")]) is False
    assert store.advance_counter("bob", alices.id, 99, T0) is False
    assert store.get_method("alice", alices.id) == alices
    assert store.list_audit() == []


def test_unknown_method_ids_are_none_or_false(store: Store) -> None:
    assert store.get_method("alice", "nope") is None
    assert store.find_method_by_lookup("nope") is None
    assert store.delete_method("alice", "nope") is False
    assert store.advance_counter("alice", "nope", 1, T0) is False
    assert store.update_method(method()) is False


# -- limits ---------------------------------------------------------------------------------------


def test_the_limit_refuses_the_method_beyond_it(store: Store) -> None:
    for _ in range(5):
        store.add_method(method(), limit=5)
    with pytest.raises(LimitReached) as caught:
        store.add_method(method(), limit=5, events=[event()])
    assert (caught.value.kind, caught.value.limit) == ("totp", 5)
    assert len(store.list_methods("alice")) == 5
    assert store.list_audit() == [], "a refused add writes no audit event"


def test_the_limit_counts_one_kind_of_one_user(store: Store) -> None:
    store.add_method(method(kind=MethodKind.MOBILE_PHONE), limit=1)
    store.add_method(method(kind=MethodKind.EMAIL), limit=1)
    store.add_method(method(user_id="bob", kind=MethodKind.MOBILE_PHONE), limit=1)
    with pytest.raises(LimitReached):
        store.add_method(method(kind=MethodKind.MOBILE_PHONE), limit=1)


def test_a_limit_of_zero_refuses_every_add(store: Store) -> None:
    with pytest.raises(LimitReached):
        store.add_method(method(), limit=0)
    assert store.list_methods("alice") == []


def test_twenty_concurrent_adds_beyond_a_full_limit_store_nothing(store: Store) -> None:
    for _ in range(5):
        store.add_method(method(), limit=5)
    results = race(20, lambda i: store.add_method(method(), limit=5, events=[event()]))
    assert all(isinstance(r, LimitReached) for r in results), results
    assert len(store.list_methods("alice")) == 5
    assert store.list_audit() == []


def test_twenty_concurrent_adds_from_empty_store_exactly_the_limit(store: Store) -> None:
    results = race(20, lambda i: store.add_method(method(), limit=5, events=[event()]))
    assert sum(r is None for r in results) == 5
    assert sum(isinstance(r, LimitReached) for r in results) == 15
    assert len(store.list_methods("alice")) == 5
    assert len(store.list_audit()) == 5, "one event per stored method, none for refused ones"


# -- lookups --------------------------------------------------------------------------------------


def test_a_lookup_value_is_unique_across_users(store: Store) -> None:
    store.add_method(method(kind=MethodKind.WEBAUTHN, lookup="cred-1"), limit=10)
    theft = method(user_id="bob", kind=MethodKind.WEBAUTHN, lookup="cred-1")
    with pytest.raises(InvalidInput) as caught:
        store.add_method(theft, limit=10, events=[event(user_id="bob")])
    assert caught.value.field == "lookup"
    assert store.list_methods("bob") == []
    assert store.list_audit() == []
    found = store.find_method_by_lookup("cred-1")
    assert found is not None and found.user_id == "alice"


def test_methods_without_lookup_do_not_collide(store: Store) -> None:
    store.add_method(method(), limit=5)
    store.add_method(method(), limit=5)
    assert len(store.list_methods("alice")) == 2


def test_concurrent_adds_of_one_lookup_store_it_once(store: Store) -> None:
    def add(i: int) -> None:
        store.add_method(
            method(user_id=f"u{i}", kind=MethodKind.HARDWARE_OATH, lookup="SN1"), limit=5
        )

    results = race(20, add)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, InvalidInput) for r in results if r is not None)


# -- update and delete ----------------------------------------------------------------------------


def test_update_replaces_label_data_and_secret_only(store: Store) -> None:
    record = method(label="old", data={"n": 1}, secret=b"s1", counter=4, lookup="L")
    store.add_method(record, limit=5)
    changed = MethodRecord(
        id=record.id,
        user_id="alice",
        kind=MethodKind.EMAIL,
        label="new",
        created_at=T0 + 99,
        data={"n": 2},
        secret=b"s2",
        counter=0,
        lookup="other",
    )
    assert store.update_method(changed, events=[event("method.changed")]) is True
    assert store.get_method("alice", record.id) == MethodRecord(
        id=record.id, user_id="alice", kind=MethodKind.TOTP, label="new", created_at=T0,
        data={"n": 2}, secret=b"s2", counter=4, lookup="L",
    )  # fmt: skip
    assert [e.event for e in store.list_audit()] == ["method.changed"]


def test_delete_removes_once_and_audits_once(store: Store) -> None:
    record = method()
    store.add_method(record, limit=5)
    assert store.delete_method("alice", record.id, events=[event("method.deleted")]) is True
    assert store.delete_method("alice", record.id, events=[event("method.deleted")]) is False
    assert store.list_methods("alice") == []
    assert [e.event for e in store.list_audit()] == ["method.deleted"]


def test_a_delete_on_condition_happens_only_if_the_methods_are_the_ones_named(
    store: Store,
) -> None:
    """``if_methods``: the check a delete was allowed by (replace before remove) read these
    methods; if another request added or deleted one since, nothing is deleted."""
    first, second = method(), method(kind=MethodKind.EMAIL)
    store.add_method(first, limit=5)
    store.add_method(second, limit=5)
    seen = [first.id, second.id]
    store.add_method(method(user_id="bob"), limit=5)  # another user's methods do not count
    later = method(kind=MethodKind.MOBILE_PHONE)
    store.add_method(later, limit=5)  # added after the check
    with pytest.raises(MethodsChanged):
        store.delete_method("alice", first.id, events=[event("method.deleted")], if_methods=seen)
    with pytest.raises(MethodsChanged):  # nor is a list with more ids than stored
        store.delete_method("alice", first.id, if_methods=[*seen, later.id, "other"])
    assert {m.id for m in store.list_methods("alice")} == {*seen, later.id}
    assert store.list_audit() == []
    now = [later.id, *seen]  # in any order
    assert store.delete_method("alice", first.id, events=[event("method.deleted")],
                               if_methods=now) is True  # fmt: skip
    assert {m.id for m in store.list_methods("alice")} == {second.id, later.id}
    assert [e.event for e in store.list_audit()] == ["method.deleted"]
    with pytest.raises(MethodsChanged):  # the one deleted is gone from the methods now
        store.delete_method("alice", second.id, if_methods=now)


def test_a_deleted_methods_lookup_can_be_registered_again(store: Store) -> None:
    record = method(kind=MethodKind.HARDWARE_OATH, lookup="SN1")
    store.add_method(record, limit=5)
    store.delete_method("alice", record.id)
    store.add_method(method(user_id="bob", kind=MethodKind.HARDWARE_OATH, lookup="SN1"), limit=5)
    found = store.find_method_by_lookup("SN1")
    assert found is not None and found.user_id == "bob"


# -- counters (TOTP steps, HOTP counters, sign counts) ------------------------------------------


@pytest.mark.parametrize(
    ("value", "advanced", "stored"),
    [
        pytest.param(11, True, 11, id="a greater value is stored"),
        pytest.param(10, False, 10, id="the same value is refused (replay)"),
        pytest.param(9, False, 10, id="an older value is refused"),
    ],
)
def test_advance_counter_only_moves_forward(
    store: Store, value: int, advanced: bool, stored: int
) -> None:
    record = method(counter=10)
    store.add_method(record, limit=5)
    assert store.advance_counter("alice", record.id, value, T0 + 30) is advanced
    got = store.get_method("alice", record.id)
    assert got is not None
    assert got.counter == stored
    assert got.last_used_at == (T0 + 30 if advanced else None)


def test_twenty_threads_advancing_to_the_same_value_exactly_one_wins(store: Store) -> None:
    record = method(counter=0)
    store.add_method(record, limit=5)
    results = race(20, lambda i: store.advance_counter("alice", record.id, 56_666_666, T0))
    assert results.count(True) == 1
    assert results.count(False) == 19


# -- advance_counter with its audit events ----------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "value", "advanced"),
    [
        pytest.param("alice", 11, True, id="a greater value is stored with its events"),
        pytest.param("alice", 10, False, id="a replayed value writes no event"),
        pytest.param("alice", 9, False, id="an older value writes no event"),
        pytest.param("bob", 11, False, id="another user's method writes no event"),
    ],
)
def test_advance_counter_writes_its_events_only_when_it_advances(
    store: Store, owner: str, value: int, advanced: bool
) -> None:
    record = method(counter=10)
    store.add_method(record, limit=5)
    success = event("mfa.succeeded", user_id=owner, detail={"method_id": record.id})
    assert store.advance_counter(owner, record.id, value, T0 + 30, events=[success]) is advanced
    assert store.list_audit() == ([success] if advanced else [])
    got = store.get_method("alice", record.id)
    assert got is not None and got.counter == (value if advanced else 10)


def test_advance_counter_of_a_missing_method_writes_no_event(store: Store) -> None:
    assert store.advance_counter("alice", "nope", 1, T0, events=[event("mfa.succeeded")]) is False
    assert store.list_audit() == []


def test_advance_counter_writes_several_events_in_order(store: Store) -> None:
    record = method(counter=0)
    store.add_method(record, limit=5)
    first, second = event("mfa.succeeded", at=T0), event("notice.queued", at=T0 + 1)
    assert store.advance_counter("alice", record.id, 1, T0, events=[first, second]) is True
    assert store.list_audit() == [second, first]  # newest first


def test_twenty_threads_advancing_with_events_leave_one_event(store: Store) -> None:
    record = method(counter=0)
    store.add_method(record, limit=5)
    results = race(
        20,
        lambda i: store.advance_counter(
            "alice", record.id, 56_666_666, T0, events=[event("mfa.succeeded", detail={"i": i})]
        ),
    )
    assert results.count(True) == 1 and results.count(False) == 19
    (logged,) = store.list_audit()
    assert results[logged.detail["i"]] is True, "the event is the winner's"


# -- advance_counter clears the throttle's counters with a success -------------------------------


@pytest.mark.parametrize(
    ("owner", "value", "advanced"),
    [
        pytest.param("alice", 11, True, id="a success clears the named counters"),
        pytest.param("alice", 10, False, id="a replay leaves them"),
        pytest.param("bob", 11, False, id="another user's method leaves them"),
    ],
)
def test_advance_counter_resets_counters_only_when_it_advances(
    store: Store, owner: str, value: int, advanced: bool
) -> None:
    record = method(counter=10)
    store.add_method(record, limit=5)
    store.counters(incr=[("fail:a", None), ("fail:b", 300.0), ("fail:b", 300.0), ("other", None)])
    moved = store.advance_counter(
        owner,
        record.id,
        value,
        T0 + 30,
        events=[event("mfa.succeeded")],
        reset=["fail:a", "fail:b"],
    )
    assert moved is advanced
    expected = [0, 0, 1] if advanced else [1, 2, 1]
    assert store.counters(read=["fail:a", "fail:b", "other"]) == expected


def test_advance_counter_resets_without_events(store: Store) -> None:
    record = method(counter=0)
    store.add_method(record, limit=5)
    store.counters(incr=[("fail:a", None)])
    assert store.advance_counter("alice", record.id, 1, T0, reset=["fail:a", "never-set"]) is True
    assert store.get_count("fail:a") == 0
    assert store.list_audit() == []

"""Store contract: user state, sessions, single-use challenges and counters (expiry by clock)."""

from __future__ import annotations

import pytest
from store_helpers import event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import Store, UserState

# -- per-user state -------------------------------------------------------------------------------


def test_a_user_without_state_gets_the_default(store: Store) -> None:
    assert store.get_user_state("alice") == UserState(user_id="alice")


def test_user_state_round_trips_and_is_replaced(store: Store) -> None:
    first = UserState(
        user_id="alice",
        default_method_id="m1",
        skips_used=2,
        snoozed_until=1.5,
        confirmed_at=2.5,
        reregister=True,
        extra={"not_me": {"at": 3}},
    )
    store.put_user_state(first, events=[event("state.changed")])
    assert store.get_user_state("alice") == first
    second = UserState(user_id="alice", skips_used=3)
    store.put_user_state(second)
    assert store.get_user_state("alice") == second
    assert [e.event for e in store.list_audit()] == ["state.changed"]


def test_list_user_ids_is_sorted_and_unique(store: Store) -> None:
    store.add_method(method(user_id="carol"), limit=5)
    store.add_method(method(user_id="carol", kind=MethodKind.EMAIL), limit=5)
    store.put_user_state(UserState(user_id="alice"))
    store.put_user_state(UserState(user_id="carol"))
    store.add_method(method(user_id="bob"), limit=5)
    assert store.list_user_ids() == ["alice", "bob", "carol"]


# -- sessions -------------------------------------------------------------------------------------


def test_a_session_round_trips_until_its_ttl(store: Store, clock: FrozenClock) -> None:
    store.save_session("s1", {"csrf": "t", "n": [1, 2]}, user_id="alice", ttl=600)
    assert store.load_session("s1") == {"csrf": "t", "n": [1, 2]}
    clock.advance(599)
    assert store.load_session("s1") is not None
    clock.advance(1)
    assert store.load_session("s1") is None


def test_saving_a_session_again_replaces_data_and_ttl(store: Store, clock: FrozenClock) -> None:
    store.save_session("s1", {"step": 1}, user_id=None, ttl=10)
    clock.advance(9)
    store.save_session("s1", {"step": 2}, user_id="alice", ttl=10)
    clock.advance(9)
    assert store.load_session("s1") == {"step": 2}
    assert store.delete_user_sessions("alice") == 1


def test_a_loaded_session_ended_meanwhile_stays_ended(store: Store, clock: FrozenClock) -> None:
    """``create=False`` (the save of a session that was loaded): only while it is live. A
    request that was running when the user signed out everywhere cannot bring it back."""
    store.save_session("k1.a", {"n": 1}, user_id="alice", ttl=60)
    assert store.save_session("k1.a", {"n": 2}, user_id="alice", ttl=60, create=False)
    assert store.load_session("k1.a") == {"n": 2}
    assert store.delete_user_sessions("alice") == 1
    assert not store.save_session("k1.a", {"n": 3}, user_id="alice", ttl=60, create=False)
    assert store.load_session("k1.a") is None
    # Nor through a rotation of it.
    assert not store.save_session(
        "k1.b", {"n": 4}, user_id="alice", ttl=60, replaces="k1.a", create=False
    )
    assert store.load_session("k1.b") is None
    assert store.delete_user_sessions("alice") == 0, "nothing was written"
    # Nor once it expired.
    store.save_session("k2.a", {"n": 5}, user_id="alice", ttl=10)
    clock.advance(11)
    assert not store.save_session("k2.a", {"n": 6}, user_id="alice", ttl=10, create=False)
    assert store.load_session("k2.a") is None
    # A live one rotates.
    store.save_session("k3.a", {"n": 7}, user_id="alice", ttl=60)
    assert store.save_session(
        "k3.b", {"n": 8}, user_id="alice", ttl=60, replaces="k3.a", create=False
    )
    assert store.load_session("k3.a") is None and store.load_session("k3.b") == {"n": 8}


def test_delete_session_and_unknown_session(store: Store) -> None:
    store.save_session("s1", {}, user_id="alice", ttl=60)
    store.delete_session("s1")
    store.delete_session("never-existed")
    assert store.load_session("s1") is None


def test_delete_user_sessions_counts_live_sessions_of_that_user_only(
    store: Store, clock: FrozenClock
) -> None:
    store.save_session("a1", {}, user_id="alice", ttl=100)
    store.save_session("a2", {}, user_id="alice", ttl=100)
    store.save_session("a-old", {}, user_id="alice", ttl=1)
    store.save_session("b1", {}, user_id="bob", ttl=100)
    store.save_session("anon", {}, user_id=None, ttl=100)
    clock.advance(2)
    assert store.delete_user_sessions("alice") == 2
    assert store.load_session("a1") is None and store.load_session("a2") is None
    assert store.load_session("b1") == {} and store.load_session("anon") == {}
    assert store.delete_user_sessions("alice") == 0


@pytest.mark.parametrize(
    "user_id",
    [pytest.param("alice", id="a signed-in user"), pytest.param(None, id="no user yet")],
)
def test_saving_with_replaces_deletes_the_old_id(store: Store, user_id: str | None) -> None:
    store.save_session("old", {"step": 1}, user_id=user_id, ttl=60)
    store.save_session("new", {"step": 2}, user_id=user_id, ttl=60, replaces="old")
    assert store.load_session("old") is None
    assert store.load_session("new") == {"step": 2}
    if user_id is not None:
        assert store.delete_user_sessions(user_id) == 1, "only the new id is live"


def test_replacing_ones_own_id_keeps_the_session(store: Store) -> None:
    store.save_session("s1", {"step": 1}, user_id="alice", ttl=60)
    store.save_session("s1", {"step": 2}, user_id="alice", ttl=60, replaces="s1")
    assert store.load_session("s1") == {"step": 2}


def test_replacing_an_id_that_is_gone_still_saves(store: Store) -> None:
    store.save_session("new", {"step": 2}, user_id="alice", ttl=60, replaces="never-existed")
    assert store.load_session("new") == {"step": 2}


def test_replacing_leaves_other_sessions_alone(store: Store) -> None:
    store.save_session("old", {}, user_id="alice", ttl=60)
    store.save_session("other-tab", {"tab": 2}, user_id="alice", ttl=60)
    store.save_session("bobs", {"bob": 1}, user_id="bob", ttl=60)
    store.save_session("new", {}, user_id="alice", ttl=60, replaces="old")
    assert store.load_session("other-tab") == {"tab": 2}
    assert store.load_session("bobs") == {"bob": 1}


# -- challenges -----------------------------------------------------------------------------------


def test_a_challenge_is_taken_once(store: Store) -> None:
    store.put_challenge("c1", {"challenge": "abc", "user": "alice"}, ttl=300)
    assert store.peek_challenge("c1") == {"challenge": "abc", "user": "alice"}
    assert store.take_challenge("c1") == {"challenge": "abc", "user": "alice"}
    assert store.take_challenge("c1") is None
    assert store.peek_challenge("c1") is None


def test_an_expired_challenge_cannot_be_taken_or_peeked(store: Store, clock: FrozenClock) -> None:
    store.put_challenge("c1", {"x": 1}, ttl=300)
    clock.advance(300)
    assert store.peek_challenge("c1") is None
    assert store.take_challenge("c1") is None


def test_putting_a_challenge_again_replaces_it(store: Store) -> None:
    store.put_challenge("c1", {"code": "1"}, ttl=300)
    store.put_challenge("c1", {"code": "2"}, ttl=300)
    assert store.take_challenge("c1") == {"code": "2"}


def test_twenty_threads_taking_one_challenge_exactly_one_gets_it(store: Store) -> None:
    store.put_challenge("c1", {"x": 1}, ttl=300)
    results = race(20, lambda i: store.take_challenge("c1"))
    assert results.count({"x": 1}) == 1
    assert results.count(None) == 19


# -- counters -------------------------------------------------------------------------------------


def test_a_durable_counter_counts_and_resets(store: Store, clock: FrozenClock) -> None:
    assert store.get_count("fail:alice") == 0
    assert [store.incr("fail:alice", ttl=None) for _ in range(3)] == [1, 2, 3]
    clock.advance(10 * 365 * 86400)
    assert store.get_count("fail:alice") == 3
    store.reset_count("fail:alice")
    assert store.get_count("fail:alice") == 0
    assert store.incr("fail:alice", ttl=None) == 1


def test_a_windowed_counter_starts_at_the_first_hit_and_resets_after(
    store: Store, clock: FrozenClock
) -> None:
    assert store.incr("ip:1.2.3.4", ttl=60) == 1
    clock.advance(30)
    assert store.incr("ip:1.2.3.4", ttl=60) == 2, "a later hit does not extend the window"
    clock.advance(30)
    assert store.get_count("ip:1.2.3.4") == 0
    assert store.incr("ip:1.2.3.4", ttl=60) == 1, "a new window starts"
    clock.advance(59)
    assert store.incr("ip:1.2.3.4", ttl=60) == 2


def test_counters_are_independent(store: Store) -> None:
    store.incr("a", ttl=None)
    store.incr("b", ttl=60)
    store.incr("b", ttl=60)
    assert (store.get_count("a"), store.get_count("b"), store.get_count("c")) == (1, 2, 0)


def test_concurrent_increments_are_never_lost(store: Store) -> None:
    def hit(i: int) -> list[int]:
        return [store.incr("otp:alice", ttl=None) for _ in range(5)]

    results = race(20, hit)
    values = sorted(v for r in results if isinstance(r, list) for v in r)
    assert values == list(range(1, 101)), "every increment returned a distinct value"
    assert store.get_count("otp:alice") == 100


def test_counters_increment_then_read_in_one_call(store: Store) -> None:
    store.incr("fail:ip:1.2.3.4", ttl=60)
    values = store.counters(
        incr=[("fail:consecutive:alice", None), ("fail:window:alice", 60)],
        read=["fail:ip:1.2.3.4", "never-counted"],
    )
    assert values == [1, 1, 1, 0], "incremented values first, then the read ones"
    assert store.counters(incr=[("fail:consecutive:alice", None)]) == [2]
    assert store.get_count("fail:consecutive:alice") == 2
    assert store.get_count("fail:window:alice") == 1


def test_counters_read_an_incremented_key_after_its_increment(store: Store) -> None:
    assert store.counters(incr=[("k", None)], read=["k"]) == [1, 1]


def test_counters_reset_before_incrementing(store: Store) -> None:
    for _ in range(3):
        store.incr("a", ttl=None)
    store.incr("b", ttl=60)
    assert store.counters(reset=["a", "b", "never-counted"]) == [], "resets return nothing"
    assert (store.get_count("a"), store.get_count("b")) == (0, 0)
    store.incr("a", ttl=None)
    assert store.counters(reset=["a"], incr=[("a", None)], read=["a"]) == [1, 1]


def test_counters_keep_the_window_rules_of_incr(store: Store, clock: FrozenClock) -> None:
    assert store.counters(incr=[("ip:1.2.3.4", 60)]) == [1]
    clock.advance(30)
    assert store.counters(incr=[("ip:1.2.3.4", 60)], read=["ip:1.2.3.4"]) == [2, 2]
    clock.advance(30)
    assert store.counters(read=["ip:1.2.3.4"]) == [0], "the window ended at 60 s, not 90 s"
    assert store.counters(incr=[("ip:1.2.3.4", 60)]) == [1], "a new window starts"
    assert store.incr("ip:1.2.3.4", ttl=60) == 2, "the single-key call sees the same counter"


def test_an_empty_counters_call_returns_nothing(store: Store) -> None:
    assert store.counters() == []


def test_twenty_threads_incrementing_one_key_through_counters_lose_nothing(store: Store) -> None:
    def hit(i: int) -> list[int]:
        return [store.counters(incr=[("otp:alice", None)])[0] for _ in range(5)]

    results = race(20, hit)
    values = sorted(v for r in results if isinstance(r, list) for v in r)
    assert values == list(range(1, 101)), "every increment returned a distinct value"
    assert store.get_count("otp:alice") == 100


def test_twenty_threads_incrementing_two_keys_through_counters_lose_nothing(store: Store) -> None:
    results = race(20, lambda i: store.counters(incr=[("a", None), ("b", 60)], read=["c"]))
    pairs = [r for r in results if isinstance(r, list)]
    assert len(pairs) == 20, results
    assert sorted(p[0] for p in pairs) == list(range(1, 21))
    assert sorted(p[1] for p in pairs) == list(range(1, 21))
    assert (store.get_count("a"), store.get_count("b")) == (20, 20)


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_closed_store_is_unavailable(store: Store) -> None:
    store.close()
    with pytest.raises(StoreUnavailable):
        store.list_methods("alice")
    with pytest.raises(StoreUnavailable):
        store.incr("k", ttl=None)
    with pytest.raises(StoreUnavailable):
        store.counters(incr=[("k", None)], read=["k"])

"""Redis only: a used code's advance behind the code throttle's limits in one script
(``RedisStore.advance_counter_checked``, the MFA verify's one round trip for the attempt and the
success on one server). At a limit nothing is written; expired windows do not refuse; a success
clears the account's counters and writes its event; a replay writes nothing; of fifty parallel
submissions of one step exactly one wins. A cluster keeps counters in other slots and says so."""

from __future__ import annotations

import pytest
from store_helpers import T0, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.base import LimitCheckedAdvance
from oidc_combinedreg.store.redis import RedisStore

STEP = 56_666_666
CONSECUTIVE, WINDOW, IP = "fail:user:alice:consecutive", "fail:user:alice:window", "fail:ip:-"


def checks(consecutive: int = 100, window: int = 3, ip: int = 5) -> list[tuple[str, int, str]]:
    return [(CONSECUTIVE, consecutive, "account-locked"), (WINDOW, window, "user"),
            (IP, ip, "ip")]  # fmt: skip


@pytest.fixture
def one_server(redis_store: RedisStore) -> RedisStore:
    if not redis_store.checks_limits():
        pytest.skip("a cluster: the counters are in other slots (checks_limits() is False)")
    return redis_store


def advance(store: RedisStore, method_id: str, step: int = STEP) -> bool | str:
    return store.advance_counter_checked(
        "alice", method_id, step, T0, checks=checks(), events=[event("mfa.succeeded")],
        reset=[CONSECUTIVE, WINDOW],
    )  # fmt: skip


def stored_counter(store: RedisStore, method_id: str) -> int:
    record = store.get_method("alice", method_id)
    assert record is not None
    return record.counter


def test_the_store_offers_the_checked_advance_on_one_server_only(redis_store: RedisStore) -> None:
    assert isinstance(redis_store, LimitCheckedAdvance)
    assert redis_store.checks_limits() is not redis_store._cluster


@pytest.mark.parametrize(
    ("key", "count", "scope"),
    [(CONSECUTIVE, 100, "account-locked"), (WINDOW, 3, "user"), (IP, 5, "ip")],
)
def test_at_a_limit_nothing_is_written_and_the_scope_is_returned(
    one_server: RedisStore, key: str, count: int, scope: str
) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(key, None if key == CONSECUTIVE else 60)] * count)
    before = one_server.counters(read=[CONSECUTIVE, WINDOW, IP])

    assert advance(one_server, record.id) == scope

    assert stored_counter(one_server, record.id) == STEP - 1
    assert one_server.counters(read=[CONSECUTIVE, WINDOW, IP]) == before
    assert one_server.list_audit(event_prefix="mfa.succeeded") == []


def test_below_the_limits_a_success_advances_audits_and_clears_the_account(
    one_server: RedisStore,
) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(CONSECUTIVE, None), (WINDOW, 60), (WINDOW, 60), (IP, 60)])

    assert advance(one_server, record.id) is True

    assert stored_counter(one_server, record.id) == STEP
    assert one_server.counters(read=[CONSECUTIVE, WINDOW, IP]) == [0, 0, 1], "the IP's stay"
    assert [e.event for e in one_server.list_audit()] == ["mfa.succeeded"]


def test_an_ended_window_does_not_refuse(one_server: RedisStore, clock: FrozenClock) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(WINDOW, 60)] * 3)
    clock.advance(60)

    assert advance(one_server, record.id) is True


def test_a_replayed_step_writes_nothing(one_server: RedisStore) -> None:
    record = method(counter=STEP)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(WINDOW, 60)])

    assert advance(one_server, record.id) is False

    assert one_server.counters(read=[WINDOW]) == [1]
    assert one_server.list_audit(event_prefix="mfa.succeeded") == []


def test_fifty_sessions_submitting_the_same_step_exactly_one_wins(one_server: RedisStore) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    results = race(50, lambda i: advance(one_server, record.id))
    assert results.count(True) == 1
    assert results.count(False) == 49
    assert len(one_server.list_audit(event_prefix="mfa.succeeded")) == 1

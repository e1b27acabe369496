"""Redis (one server) and PostgreSQL: a used code's advance behind the code throttle's limits in
one atomic call (``LimitCheckedAdvance.advance_counter_checked``, the MFA verify's one round trip
for the attempt and the success). At a limit nothing is written; expired windows do not refuse; a
success clears the account's counters and writes its event; a replay writes nothing; of fifty
parallel submissions of one step exactly one wins. A cluster keeps counters in other slots and
says so. The same call writes the session save planned ahead in the block
(``plan_session_save``): with the success only, only while the session it replaces is live, and
the block's save of the same session then writes nothing more (issue 22)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import pytest
from store_helpers import T0, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.base import LimitCheckedAdvance, Store
from oidc_combinedreg.store.postgres import PostgresStore
from oidc_combinedreg.store.redis import RedisStore

STEP = 56_666_666
CONSECUTIVE, WINDOW, IP = "fail:user:alice:consecutive", "fail:user:alice:window", "fail:ip:-"
OLD, NEW = "sessionkey-1.old-secret", "sessionkey-1.new-secret"
SIGNED_IN = {"uid": "alice", "amr": ["pwd"]}
UPGRADED = {"uid": "alice", "amr": ["pwd", "otp", "mfa"], "mfa_at": int(T0)}


class CheckedStore(Store, LimitCheckedAdvance, Protocol):
    """A store with the checked advance (Redis on one server, PostgreSQL)."""


def checks(consecutive: int = 100, window: int = 3, ip: int = 5) -> list[tuple[str, int, str]]:
    return [(CONSECUTIVE, consecutive, "account-locked"), (WINDOW, window, "user"),
            (IP, ip, "ip")]  # fmt: skip


@pytest.fixture(params=["redis", "postgres"])
def one_server(request: pytest.FixtureRequest, clock: FrozenClock) -> Iterator[CheckedStore]:
    """A store whose checked advance is atomic: Redis on one server, PostgreSQL."""
    store: Any
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.flush()
        store = RedisStore.from_url(server.url, clock=clock)
    else:
        server = request.getfixturevalue("postgres_server")
        store = PostgresStore(server.dsn, clock=clock, max_size=8)
        server.truncate()
    assert store.checks_limits()
    yield store
    store.close()


def advance(store: CheckedStore, method_id: str, step: int = STEP) -> bool | str:
    return store.advance_counter_checked(
        "alice", method_id, step, T0, checks=checks(), events=[event("mfa.succeeded")],
        reset=[CONSECUTIVE, WINDOW],
    )  # fmt: skip


def stored_counter(store: Store, method_id: str) -> int:
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
    one_server: CheckedStore, key: str, count: int, scope: str
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
    one_server: CheckedStore,
) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(CONSECUTIVE, None), (WINDOW, 60), (WINDOW, 60), (IP, 60)])

    assert advance(one_server, record.id) is True

    assert stored_counter(one_server, record.id) == STEP
    assert one_server.counters(read=[CONSECUTIVE, WINDOW, IP]) == [0, 0, 1], "the IP's stay"
    assert [e.event for e in one_server.list_audit()] == ["mfa.succeeded"]


def test_an_ended_window_does_not_refuse(one_server: CheckedStore, clock: FrozenClock) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(WINDOW, 60)] * 3)
    clock.advance(60)

    assert advance(one_server, record.id) is True


def test_a_replayed_step_writes_nothing(one_server: CheckedStore) -> None:
    record = method(counter=STEP)
    one_server.add_method(record, limit=5)
    one_server.counters(incr=[(WINDOW, 60)])

    assert advance(one_server, record.id) is False

    assert one_server.counters(read=[WINDOW]) == [1]
    assert one_server.list_audit(event_prefix="mfa.succeeded") == []


def test_fifty_sessions_submitting_the_same_step_exactly_one_wins(one_server: CheckedStore) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    results = race(50, lambda i: advance(one_server, record.id))
    assert results.count(True) == 1
    assert results.count(False) == 49
    assert len(one_server.list_audit(event_prefix="mfa.succeeded")) == 1


# -- the session save planned ahead (the MFA step's upgraded session) -----------------------------


def signed_in(store: Store) -> None:
    """The session the MFA step loaded: signed in with a password."""
    assert store.save_session(OLD, SIGNED_IN, user_id="alice", ttl=600)


def plan(store: CheckedStore, data: dict[str, Any] = UPGRADED) -> None:
    store.plan_session_save(NEW, data, user_id="alice", ttl=600, replaces=OLD, create=False)


def save(store: Store, data: dict[str, Any] = UPGRADED) -> bool:
    return store.save_session(NEW, data, user_id="alice", ttl=600, replaces=OLD, create=False)


def test_a_planned_save_is_written_with_the_success_and_not_again(
    one_server: CheckedStore,
) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    with one_server.transaction():
        plan(one_server)
        assert advance(one_server, record.id) is True
        # Written by the advance (the round trips: test_redis_store.py, tests/web/*round_trips*)
        assert one_server.load_session(NEW) == UPGRADED
        assert one_server.load_session(OLD) is None
        assert save(one_server) is True

    assert one_server.load_session(NEW) == UPGRADED
    assert stored_counter(one_server, record.id) == STEP
    assert [e.event for e in one_server.list_audit()] == ["mfa.succeeded"]
    assert one_server.delete_user_sessions("alice") == 1, "indexed for 'sign out everywhere'"


@pytest.mark.parametrize("refusal", ["limit", "replay", "another user"])
def test_no_success_no_planned_session(one_server: CheckedStore, refusal: str) -> None:
    """A refused code (at a limit, replayed) or a plan for someone else writes no session: the
    old id still opens the sign-in, and the block's save (if it made one) writes as usual."""
    record = method(counter=STEP if refusal == "replay" else STEP - 1)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    if refusal == "limit":
        one_server.counters(incr=[(WINDOW, 60)] * 3)
    with one_server.transaction():
        if refusal == "another user":
            one_server.plan_session_save(NEW, UPGRADED, user_id="bob", ttl=600, replaces=OLD,
                                         create=False)  # fmt: skip
        else:
            plan(one_server)
        result = advance(one_server, record.id)
        assert one_server.load_session(NEW) is None
        assert one_server.load_session(OLD) == SIGNED_IN

    assert result == {"limit": "user", "replay": False, "another user": True}[refusal]
    assert save(one_server) is True
    assert one_server.load_session(NEW) == UPGRADED
    assert one_server.load_session(OLD) is None


def test_a_session_ended_meanwhile_is_not_saved_by_the_success(one_server: CheckedStore) -> None:
    """'Sign out everywhere' between the MFA step's load and its code check: the code is used
    (and audited) as before, the planned session is not written, and the save says so."""
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    with one_server.transaction():
        plan(one_server)
        assert one_server.delete_user_sessions("alice") == 1
        assert advance(one_server, record.id) is True
        assert save(one_server) is False

    assert one_server.load_session(NEW) is None
    assert one_server.load_session(OLD) is None
    assert one_server.delete_user_sessions("alice") == 0
    assert stored_counter(one_server, record.id) == STEP


def test_a_save_of_other_data_updates_the_planned_session(one_server: CheckedStore) -> None:
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    other = {**UPGRADED, "amr": ["pwd", "hwk", "mfa"]}
    with one_server.transaction():
        plan(one_server)
        assert advance(one_server, record.id) is True
        assert save(one_server, other) is True

    assert one_server.load_session(NEW) == other
    assert one_server.load_session(OLD) is None
    assert one_server.delete_user_sessions("alice") == 1


def test_a_plan_lives_in_its_block_only(one_server: CheckedStore) -> None:
    """Outside a block a plan is ignored; a block that ends without an advance takes its plan
    with it: a later advance writes no session."""
    record = method(counter=STEP - 3)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    plan(one_server)
    assert advance(one_server, record.id, STEP - 2) is True
    with one_server.transaction():
        plan(one_server)
    with one_server.transaction():
        assert advance(one_server, record.id, STEP - 1) is True
    assert advance(one_server, record.id) is True

    assert one_server.load_session(NEW) is None
    assert one_server.load_session(OLD) == SIGNED_IN


def test_of_parallel_uses_of_one_step_one_saves_its_session(one_server: CheckedStore) -> None:
    """Ten sign-ins submit the same step at once, each with its planned session: one code is
    accepted and exactly its session is saved; the others keep their old sessions."""
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    for i in range(10):
        assert one_server.save_session(f"key-{i}.old", SIGNED_IN, user_id="alice", ttl=600)

    def attempt(i: int) -> bool | str:
        with one_server.transaction():
            one_server.plan_session_save(f"key-{i}.new", UPGRADED, user_id="alice", ttl=600,
                                         replaces=f"key-{i}.old", create=False)  # fmt: skip
            return advance(one_server, record.id)

    results = race(10, attempt)
    assert results.count(True) == 1 and results.count(False) == 9
    upgraded = [i for i in range(10) if one_server.load_session(f"key-{i}.new") is not None]
    assert upgraded == [results.index(True)]
    assert sum(one_server.load_session(f"key-{i}.old") is not None for i in range(10)) == 9


def test_wrong_and_right_codes_at_once_do_not_deadlock(one_server: CheckedStore) -> None:
    """Wrong codes (counted first in a block: the account's counters, then the address's) and
    right ones (the checked advance locks the same counters in the same order, then the method)
    of one user and address at once: every call ends, none waits on the other for good
    (PostgreSQL would break a deadlock by failing one of them)."""
    record = method(counter=STEP - 100)
    one_server.add_method(record, limit=5)

    def attempt(i: int) -> bool | str:
        if i % 2:
            with one_server.transaction():
                one_server.counters(incr=[(CONSECUTIVE, None), (WINDOW, 60)], read=[IP])
                one_server.counters(incr=[(IP, 60)])
                one_server.append_audit(event("mfa.failed"))
            return "failed"
        return advance(one_server, record.id, STEP - 100 + i)

    results = race(20, attempt)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert results.count("failed") == 10


def test_the_success_events_are_stored_exactly_as_given(one_server: CheckedStore) -> None:
    """The events travel in the checked call (PostgreSQL: as one JSON text): times, missing
    values, text beyond ASCII, a NUL character and large numbers come back unchanged."""
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    given = [
        event(
            "mfa.succeeded",
            at=T0 + 0.123456789,
            ip=None,
            correlation_id="c-ü𝄞",
            detail={"x": "a\u0000b", "n": 2**60, "f": 0.1},
        ),  # fmt: skip
        event("mfa.other", user_id="ünï", at=T0 + 1, ip="2001:db8::1", detail={}),
    ]
    assert one_server.advance_counter_checked(
        "alice", record.id, STEP, T0, checks=checks(), events=given, reset=[CONSECUTIVE, WINDOW]
    ) is True  # fmt: skip
    assert sorted(one_server.list_audit(), key=lambda e: e.at) == given


@contextmanager
def refusing_the_checked_call(
    store: CheckedStore, request: pytest.FixtureRequest, clock: FrozenClock
) -> Iterator[CheckedStore]:
    """A real fault in the middle of the checked call: Redis out of memory (a script that
    writes is refused as a whole), PostgreSQL's statement stopped by its timeout at the session
    row, after it changed the method, the audit log and the counters (another client holds the
    row's lock)."""
    if isinstance(store, RedisStore):
        store.client.config_set("maxmemory", 1)
        try:
            yield store
        finally:
            store.client.config_set("maxmemory", 0)
        return
    server = request.getfixturevalue("postgres_server")
    short = PostgresStore(server.dsn, clock=clock, statement_timeout=0.3)
    with server.connect("creg") as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM sessions WHERE sid = 'sessionkey-1' FOR UPDATE")
        try:
            yield short
        finally:
            holder.execute("ROLLBACK")
            short.close()


def test_a_fault_in_the_checked_call_writes_nothing_and_the_code_works_after(
    one_server: CheckedStore, request: pytest.FixtureRequest, clock: FrozenClock
) -> None:
    """Fail closed, all or nothing: the step, its event, the counters cleared and the session
    are one write; refused, none of them happened, and the same code works once the store
    answers again."""
    record = method(counter=STEP - 1)
    one_server.add_method(record, limit=5)
    signed_in(one_server)
    one_server.counters(incr=[(WINDOW, 60)])
    with refusing_the_checked_call(one_server, request, clock) as faulty:
        with pytest.raises(StoreUnavailable), faulty.transaction():
            plan(faulty)
            advance(faulty, record.id)

    assert stored_counter(one_server, record.id) == STEP - 1
    assert one_server.list_audit() == []
    assert one_server.counters(read=[WINDOW]) == [1]
    assert one_server.load_session(OLD) == SIGNED_IN
    assert one_server.load_session(NEW) is None
    with one_server.transaction():
        plan(one_server)
        assert advance(one_server, record.id) is True
        assert save(one_server) is True
    assert one_server.load_session(NEW) == UPGRADED

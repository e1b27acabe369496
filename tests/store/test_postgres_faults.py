"""PostgreSQL faults (issue 21.4): a connection cut in the middle of a transaction
(``pg_terminate_backend``) and a server restarted fail closed (``StoreUnavailable``, nothing
half-written), and the same store recovers once the server answers again.

The tests own their server (a fresh one, not the session's): they terminate and restart it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from postgres_servers import PostgresServer, wait_until
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.postgres import PostgresStore
from oidc_combinedreg.store.postgres_sql import LOCK_USER, user_lock_key


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    own = PostgresServer().start()
    own.create_database("creg")
    yield own
    own.destroy()


@pytest.fixture
def store(server: PostgresServer) -> Iterator[PostgresStore]:
    if server.process is None:
        server.start()
    opened = PostgresStore(server.dsn, clock=FrozenClock(T0), pool_timeout=2, max_size=4)
    server.truncate()
    yield opened
    opened.close()


def _blocked_on_user_lock(server: PostgresServer) -> bool:
    with server.connect("creg") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return row is not None and row[0] >= 1


def _in_thread(action: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:  # asserted on by the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_connection_cut_mid_transaction_writes_nothing_and_the_store_recovers(
    server: PostgresServer, store: PostgresStore
) -> None:
    first = method("alice")

    def two_adds() -> None:
        # One transaction: alice's add is written (not committed), then bob's waits for his lock.
        with store.transaction():
            store.add_method(first, limit=5, events=[event(user_id="alice")])
            store.add_method(method("bob"), limit=5, events=[event(user_id="bob")])

    with server.connect("creg") as holder:
        holder.execute(LOCK_USER.replace("_xact", ""), user_lock_key("bob"))  # session lock
        thread, outcome = _in_thread(two_adds)
        wait_until(lambda: _blocked_on_user_lock(server))
        assert server.terminate() >= 1  # every store connection, the waiting one included
        thread.join(timeout=10)
    assert isinstance(outcome[0], StoreUnavailable), outcome
    # Nothing half-written: neither alice's method nor its audit event was committed.
    with server.connect("creg") as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM methods), (SELECT count(*) FROM audit)")
        assert counts.fetchone() == (0, 0)
    # The same store goes on (the pool dropped the cut connections).
    store.add_method(first, limit=5, events=[event()])
    assert store.list_methods("alice") == [first]
    assert [e.event for e in store.list_audit()] == ["method.added"]


def test_idle_connections_cut_fail_one_call_at_most_then_work(
    server: PostgresServer, store: PostgresStore
) -> None:
    store.put_challenge("c", {"n": 1}, ttl=60)
    server.terminate()
    outcomes: list[object] = []
    for _ in range(3):
        try:
            outcomes.append(store.peek_challenge("c"))
        except StoreUnavailable as exc:
            outcomes.append(exc)
    # a dead pooled connection may answer one call with StoreUnavailable, never more
    assert outcomes[-2:] == [{"n": 1}, {"n": 1}], outcomes
    assert store.take_challenge("c") == {"n": 1}
    assert store.take_challenge("c") is None


def test_a_restarted_server_fails_closed_while_down_and_the_store_recovers(
    server: PostgresServer, store: PostgresStore
) -> None:
    record = method()
    store.add_method(record, limit=5, events=[event()])
    store.save_session("k.s", {"step": 2}, user_id="alice", ttl=600)
    server.stop(immediate=True)  # as if it crashed
    for action in (
        lambda: store.list_methods("alice"),
        lambda: store.advance_counter("alice", record.id, 5, T0),
        lambda: store.load_session("k.s"),
        lambda: store.incr("fail:alice", ttl=None),
    ):
        with pytest.raises(StoreUnavailable):
            action()
    server.start()

    def works() -> bool:
        try:
            return store.list_methods("alice") == [record]
        except StoreUnavailable:
            return False

    wait_until(works, within=20)
    # What was committed before the crash is all there; the refused counter never moved.
    assert store.load_session("k.s") == {"step": 2}
    assert store.advance_counter("alice", record.id, 5, T0) is True
    assert store.advance_counter("alice", record.id, 5, T0) is False


def test_a_statement_stuck_behind_a_lock_times_out_closed(server: PostgresServer) -> None:
    store = PostgresStore(server.dsn, clock=FrozenClock(T0), statement_timeout=0.3)
    try:
        server.truncate()
        with server.connect("creg") as holder:
            holder.execute(LOCK_USER.replace("_xact", ""), user_lock_key("alice"))
            with pytest.raises(StoreUnavailable, match="statement timeout"):
                store.add_method(method(), limit=5, events=[event()])
        assert store.list_methods("alice") == []
        assert store.list_audit() == []
    finally:
        store.close()


def test_errors_reach_the_caller_as_store_unavailable_not_psycopg(
    server: PostgresServer, store: PostgresStore
) -> None:
    # A value PostgreSQL refuses (NUL in text) fails closed like any other database error.
    with pytest.raises(StoreUnavailable):
        store.put_challenge("c\x00", {}, ttl=60)
    assert not isinstance(StoreUnavailable("x"), psycopg.Error)

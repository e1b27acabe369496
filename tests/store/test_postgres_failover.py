"""A primary failover with a streaming replica (issue 21.4), like the Redis Sentinel test: the
store's DSN names both servers with ``target_session_attrs=read-write``, so libpq connects to
whichever accepts writes. The primary waits for the standby to confirm every commit
(``synchronous_standby_names``), so nothing acknowledged is lost by the failover.

Primary killed -> StoreUnavailable (the standby refuses writes: never a stale success); standby
promoted -> the same store goes on against it, with every method, session and used TOTP step.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_servers import PostgresServer, wait_until
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.postgres import PostgresStore


@pytest.fixture
def pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    primary = PostgresServer(extra=("-c", "synchronous_standby_names=*")).start()
    standby = PostgresServer(replica_of=primary).start()
    try:
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


def test_primary_failover_to_a_promoted_standby(
    pair: tuple[PostgresServer, PostgresServer],
) -> None:
    primary, standby = pair
    # creating the database on the primary replicates it (and waits for the standby)
    primary.create_database("creg")
    dsn = (
        f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} user=postgres"
        " dbname=creg target_session_attrs=read-write"
    )
    store = PostgresStore(dsn, clock=FrozenClock(T0), pool_timeout=2, max_size=4)
    try:
        record = method()
        store.add_method(record, limit=5, events=[event()])
        store.save_session("k.s", {"step": 3}, user_id="alice", ttl=600)
        assert store.advance_counter("alice", record.id, 100, T0) is True

        primary.stop(immediate=True)
        with pytest.raises(StoreUnavailable):
            store.advance_counter("alice", record.id, 101, T0)  # the standby refuses writes
        with pytest.raises(StoreUnavailable):
            store.list_methods("alice")

        with standby.connect() as conn:
            conn.execute("SELECT pg_promote(true)")

        def works() -> bool:
            try:
                return store.list_methods("alice") != []
            except StoreUnavailable:
                return False

        wait_until(works, within=30)
        (again,) = store.list_methods("alice")
        assert again.id == record.id and again.counter == 100
        assert store.load_session("k.s") == {"step": 3}
        assert store.advance_counter("alice", record.id, 100, T0) is False  # no replay
        assert store.advance_counter("alice", record.id, 101, T0) is True
        assert [e.event for e in store.list_audit()] == ["method.added"]
    finally:
        store.close()

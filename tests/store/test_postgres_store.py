"""What the PostgreSQL store adds to the contract suite: limits under 50 parallel adds from two
pools (two hosts), the schema's versions and migrations (two at once), no secrets in errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_servers import PostgresServer
from store_helpers import T0, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import LimitReached, StoreUnavailable
from oidc_combinedreg.store.postgres import PostgresStore
from oidc_combinedreg.store.postgres_schema import MIGRATIONS, migrate


@pytest.fixture
def fresh_dsn(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """An empty database of its own (no tables yet)."""
    return postgres_server.create_database(f"t_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def two_hosts(postgres_server: PostgresServer) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    clock = FrozenClock(T0)
    first = PostgresStore(postgres_server.dsn, clock=clock, max_size=10)
    second = PostgresStore(postgres_server.dsn, clock=clock, max_size=10)
    postgres_server.truncate()
    yield first, second
    first.close()
    second.close()


def test_limit_holds_under_50_parallel_adds_from_two_hosts(
    two_hosts: tuple[PostgresStore, PostgresStore],
) -> None:
    stores = two_hosts
    results = race(
        50, lambda i: stores[i % 2].add_method(method(), limit=5, events=[event(detail={"i": i})])
    )
    assert sum(r is None for r in results) == 5
    assert all(r is None or isinstance(r, LimitReached) for r in results)
    assert len(stores[0].list_methods("alice")) == 5
    # the audit is in the same transaction: one "added" event per stored method, no more
    assert len(stores[1].list_audit(event_prefix="method.added")) == 5


def test_parallel_adds_of_different_users_all_succeed(
    two_hosts: tuple[PostgresStore, PostgresStore],
) -> None:
    stores = two_hosts
    results = race(50, lambda i: stores[i % 2].add_method(method(f"user{i}"), limit=1))
    assert results == [None] * 50
    assert len(stores[0].list_user_ids()) == 50


def test_a_fresh_database_is_migrated_at_open_in_development(fresh_dsn: str) -> None:
    store = PostgresStore(fresh_dsn, clock=FrozenClock(T0))
    try:
        assert store.schema_version() == len(MIGRATIONS)
        assert store.migrate() == 0  # nothing left to apply
    finally:
        store.close()


def test_an_unmigrated_database_is_refused_without_migrate(fresh_dsn: str) -> None:
    with pytest.raises(StoreUnavailable, match="combinedreg migrate"):
        PostgresStore(fresh_dsn, clock=FrozenClock(T0), migrate=False)


def test_a_newer_schema_is_refused(fresh_dsn: str) -> None:
    PostgresStore(fresh_dsn, clock=FrozenClock(T0)).close()
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO combinedreg_schema VALUES (%s, 0)", (len(MIGRATIONS) + 1,))
    for apply in (True, False):
        with pytest.raises(StoreUnavailable, match="newer"):
            PostgresStore(fresh_dsn, clock=FrozenClock(T0), migrate=apply)


def test_two_hosts_migrating_at_once_apply_each_migration_once(fresh_dsn: str) -> None:
    # Without the advisory lock, two CREATE TABLEs of one migration meet (a duplicate error) or
    # both record it. Each thread is one host's `combinedreg migrate` on its own connection.
    applied: list[object] = []
    barrier = threading.Barrier(4)

    def migrate_once() -> None:
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            barrier.wait()
            try:
                applied.append(migrate(conn, "test", T0))
            except BaseException as exc:  # asserted on below
                applied.append(exc)

    threads = [threading.Thread(target=migrate_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(applied, key=repr) == [0, 0, 0, len(MIGRATIONS)]
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT version FROM combinedreg_schema ORDER BY 1").fetchall()
    assert [row[0] for row in rows] == list(range(1, len(MIGRATIONS) + 1))


def test_errors_never_show_the_password(postgres_server: PostgresServer) -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{postgres_server.port}/no_such_db"
    with pytest.raises(StoreUnavailable) as caught:
        PostgresStore(dsn, clock=FrozenClock(T0), pool_timeout=2)
    assert "s3cret-pw" not in str(caught.value)
    assert "no_such_db" in str(caught.value)


def test_the_config_opens_a_postgres_store(postgres_server: PostgresServer, tmp_path: Path) -> None:
    from oidc_combinedreg import parse_config
    from oidc_combinedreg.crypto import generate_key
    from oidc_combinedreg.store.factory import open_store

    data = {
        "general": {"environment": "development"},
        "secrets": {"encryption_keys": [generate_key()]},
        "web": {"secure_cookies": False},
        "storage": {"backend": "postgres", "postgres": {"dsn": postgres_server.dsn}},
    }
    config = parse_config(data, base_dir=tmp_path)
    store = open_store(config.storage, clock=FrozenClock(T0))
    try:
        assert isinstance(store, PostgresStore)
        store.put_challenge("k", {"a": 1}, ttl=60)
        assert store.take_challenge("k") == {"a": 1}
        assert store.take_challenge("k") is None
    finally:
        store.close()


def test_expired_rows_are_purged_and_live_ones_kept(postgres_server: PostgresServer) -> None:
    clock = FrozenClock(T0)
    store = PostgresStore(postgres_server.dsn, clock=clock)
    try:
        postgres_server.truncate()
        store.save_session("old.s", {}, user_id="alice", ttl=10)
        store.put_challenge("old", {}, ttl=10)
        store.incr("window", ttl=10)
        store.incr("durable", ttl=None)
        store.save_session("new.s", {}, user_id="alice", ttl=1000)
        clock.advance(11)
        assert store.purge_expired() == 3
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            sessions = conn.execute("SELECT sid FROM sessions").fetchall()
            counters = conn.execute("SELECT key FROM counters").fetchall()
        assert sessions == [("new",)] and counters == [("durable",)]
        assert store.load_session("new.s") == {}
    finally:
        store.close()


def test_a_forked_child_opens_its_own_pool_and_leaves_the_parents_alone(
    postgres_server: PostgresServer,
) -> None:
    # gunicorn --preload: the store is opened in the master, then the workers are forked. A
    # child that used (or closed) the parent's connections would break the parent's.
    import os

    store = PostgresStore(postgres_server.dsn, clock=FrozenClock(T0))
    try:
        postgres_server.truncate()
        store.incr("parent", ttl=None)
        pid = os.fork()
        if pid == 0:  # the child: its own pool, its own connections
            code = 1
            try:
                store.incr("child", ttl=None)
                store.close()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.incr("parent", ttl=None) == 2  # the parent's connection still works
        assert store.get_count("child") == 1
    finally:
        store.close()

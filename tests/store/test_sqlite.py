"""SQLite only: faults (locked, full, read-only, not a database), migrations, processes, fork."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from store_helpers import T0, add_totps_in_process, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import SqliteStore, request_reads, sqlite_schema
from oidc_combinedreg.store.sqlite_reads import LIST_METHODS, LOAD_SESSION_WITH_USER
from oidc_combinedreg.store.sqlite_rows import IN_USE


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


@pytest.fixture
def db(path: str, clock: FrozenClock) -> Iterator[SqliteStore]:
    store = SqliteStore(path, clock=clock, busy_timeout=0.05)
    yield store
    store.close()


def raw_rows(path: str, table: str) -> int:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# -- faults ---------------------------------------------------------------------------------------


@pytest.fixture
def write_locked(path: str, db: SqliteStore) -> Iterator[None]:
    """Another connection holds the write lock for the duration of the test."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


WRITES: list[object] = [
    pytest.param(lambda s: s.add_method(method(), limit=5, events=[event()]), id="add_method"),
    pytest.param(lambda s: s.incr("k", ttl=None), id="incr"),
    pytest.param(lambda s: s.put_challenge("c", {}, ttl=60), id="put_challenge"),
    pytest.param(lambda s: s.take_challenge("c"), id="take_challenge"),
    pytest.param(lambda s: s.save_session("s", {}, user_id="alice", ttl=60), id="save_session"),
    pytest.param(lambda s: s.append_audit(event()), id="append_audit"),
    pytest.param(lambda s: s.counters(incr=[("k", None)], read=["j"]), id="counters"),
    pytest.param(lambda s: s.counters(reset=["k"]), id="counters resetting"),
    pytest.param(
        lambda s: s.save_session("s", {}, user_id="alice", ttl=60, replaces="old"),
        id="save_session replacing",
    ),
    pytest.param(
        lambda s: s.advance_counter("alice", "m1", 9, T0, events=[event()]),
        id="advance_counter with events",
    ),
]


@pytest.mark.usefixtures("write_locked")
@pytest.mark.parametrize("write", WRITES)
def test_a_write_past_the_busy_timeout_is_unavailable(
    db: SqliteStore, write: Callable[[SqliteStore], object]
) -> None:
    with pytest.raises(StoreUnavailable, match="locked"):
        write(db)


@pytest.mark.usefixtures("write_locked")
def test_reads_still_work_while_another_process_writes(db: SqliteStore) -> None:
    assert db.list_methods("alice") == []
    assert db.get_count("k") == 0


def test_a_locked_add_leaves_nothing_and_the_store_recovers(path: str, db: SqliteStore) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable):
        db.add_method(method(), limit=5, events=[event()])
    holder.execute("ROLLBACK")
    holder.close()
    assert db.list_methods("alice") == [] and db.list_audit() == []
    db.add_method(method(), limit=5, events=[event()])
    assert len(db.list_methods("alice")) == 1


def test_disk_full_during_an_add_rolls_back_method_and_audit(path: str, clock: FrozenClock) -> None:
    SqliteStore(path, clock=clock).close()
    pages = raw_rows_pages(path)

    def cap_size(conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA max_page_count = {pages}")

    full = SqliteStore(path, clock=clock, on_connect=cap_size)
    big_event = event(detail={"blob": "x" * 200_000})
    with pytest.raises(StoreUnavailable, match="full"):
        full.add_method(method(), limit=5, events=[big_event])
    full.close()
    assert raw_rows(path, "methods") == 0
    assert raw_rows(path, "audit") == 0


def raw_rows_pages(path: str) -> int:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def test_a_read_only_file_serves_reads_and_refuses_writes(path: str, db: SqliteStore) -> None:
    db.add_method(method(label="kept"), limit=5)
    read_only = SqliteStore(f"file:{path}?mode=ro", clock=FrozenClock(T0))
    try:
        assert [m.label for m in read_only.list_methods("alice")] == ["kept"]
        with pytest.raises(StoreUnavailable, match="readonly"):
            read_only.add_method(method(label="new"), limit=5, events=[event()])
    finally:
        read_only.close()
    assert [m.label for m in db.list_methods("alice")] == ["kept"]
    assert db.list_audit() == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not a database\n" * 100, id="a text file"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 2000, id="a truncated header"),
    ],
)
def test_a_file_that_is_not_a_database_is_a_clear_error(path: str, content: bytes) -> None:
    Path(path).write_bytes(content)
    with pytest.raises(StoreUnavailable, match="not an SQLite database"):
        SqliteStore(path, clock=FrozenClock(T0))


def test_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unable to open"):
        SqliteStore(str(tmp_path / "missing" / "store.db"), clock=FrozenClock(T0))


@pytest.mark.parametrize("path", [":memory:", "", "file:x?mode=memory"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="needs a file"):
        SqliteStore(path, clock=FrozenClock(T0))


# -- schema and migrations ------------------------------------------------------------------------


def test_a_new_file_is_created_in_wal_mode_at_the_latest_version(
    path: str, db: SqliteStore
) -> None:
    assert db.schema_version() == len(sqlite_schema.MIGRATIONS)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_empty_existing_file_is_migrated(path: str) -> None:
    Path(path).touch()
    store = SqliteStore(path, clock=FrozenClock(T0))
    assert store.schema_version() == len(sqlite_schema.MIGRATIONS)
    store.close()


def test_an_old_file_is_migrated_and_keeps_its_data(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = SqliteStore(path, clock=FrozenClock(T0))
    record = method(label="from v1")
    old.add_method(record, limit=5)
    old.close()
    latest = len(sqlite_schema.MIGRATIONS)
    migration = ("ALTER TABLE methods ADD COLUMN note TEXT", "CREATE TABLE extra (x TEXT)")
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", (*sqlite_schema.MIGRATIONS, migration))
    new = SqliteStore(path, clock=FrozenClock(T0))
    assert new.schema_version() == latest + 1
    assert new.list_methods("alice") == [record]
    new.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(methods)")]
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert "note" in columns
    assert versions == list(range(1, latest + 2))


def test_a_version_1_file_keeps_its_counters_and_audit_through_migration_2(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FrozenClock(T0)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:1])
        old = SqliteStore(path, clock=clock)
        old.counters(incr=[("durable", None), ("windowed", 60.0), ("windowed", 60.0)])
        events = [event("method.added", at=T0 + i, detail={"i": i}) for i in range(3)]
        for e in events:
            old.append_audit(e)
        old.close()
    new = SqliteStore(path, clock=clock)
    assert new.schema_version() == len(sqlite_schema.MIGRATIONS)
    assert new.counters(read=["durable", "windowed"]) == [1, 2]
    clock.advance(60)
    assert new.counters(read=["durable", "windowed"]) == [1, 0], "the window still ends"
    assert new.list_audit() == events[::-1]
    new.append_audit(later := event("method.deleted", at=T0 + 1))
    assert new.list_audit(limit=1) == [events[2]], "newest by time first"
    assert later in new.list_audit()
    new.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        ids = [row[0] for row in conn.execute("SELECT id FROM audit ORDER BY id")]
    assert "WITHOUT ROWID" in tables["counters"] and "AUTOINCREMENT" not in tables["audit"]
    assert ids == [1, 2, 3, 4], "the ids carried over and keep growing"


def test_a_version_2_file_keeps_its_sessions_through_migration_3(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions saved before migration 3 (ids without a key part) still open, rotate and end."""
    clock = FrozenClock(T0)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:2])
        SqliteStore(path, clock=clock).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executemany(
            "INSERT INTO sessions (sid, user_id, data, expires_at) VALUES (?, ?, ?, ?)",
            [("oldA", "alice", '{"n":1}', T0 + 60), ("oldB", "alice", '{"n":2}', T0 + 60)],
        )
    new = SqliteStore(path, clock=clock)
    assert new.schema_version() == len(sqlite_schema.MIGRATIONS)
    assert new.load_session("oldA") == {"n": 1} and new.load_session("oldB") == {"n": 2}
    new.save_session("k.s", {"n": 3}, user_id="alice", ttl=60, replaces="oldA")
    assert new.load_session("oldA") is None and new.load_session("k.s") == {"n": 3}
    assert new.delete_user_sessions("alice") == 2
    new.close()


def test_a_file_from_a_newer_release_is_refused(path: str) -> None:
    SqliteStore(path, clock=FrozenClock(T0)).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("INSERT INTO schema_version (version, at) VALUES (99, 0)")
    with pytest.raises(StoreUnavailable, match="newer"):
        SqliteStore(path, clock=FrozenClock(T0))


def test_workers_opening_a_fresh_file_together_migrate_it_once(path: str) -> None:
    stores = race(8, lambda i: SqliteStore(path, clock=FrozenClock(T0)))
    assert all(isinstance(s, SqliteStore) for s in stores), stores
    for s in stores:
        assert isinstance(s, SqliteStore)
        s.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(sqlite_schema.MIGRATIONS) + 1)), "each migration ran once"


# -- expiry housekeeping --------------------------------------------------------------------------


def test_purge_deletes_expired_rows_only(path: str, db: SqliteStore, clock: FrozenClock) -> None:
    db.save_session("old", {}, user_id="alice", ttl=10)
    db.save_session("live", {}, user_id="alice", ttl=100)
    db.put_challenge("old", {}, ttl=10)
    db.incr("window", ttl=10)
    db.incr("durable", ttl=None)
    clock.advance(50)
    assert db.purge_expired() == 3
    assert (raw_rows(path, "sessions"), raw_rows(path, "challenges")) == (1, 0)
    assert raw_rows(path, "counters") == 1
    assert db.get_count("durable") == 1


def test_expired_rows_are_purged_while_writing(
    path: str, db: SqliteStore, clock: FrozenClock
) -> None:
    for i in range(100):
        db.put_challenge(f"c{i}", {}, ttl=1)
    clock.advance(2)
    for i in range(100):
        db.put_challenge(f"d{i}", {}, ttl=1)
    assert raw_rows(path, "challenges") < 200


# -- the fallback for SQLite before 3.35 (no RETURNING) -------------------------------------------


@pytest.fixture
def without_returning(
    path: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SqliteStore]:
    store = SqliteStore(path, clock=clock)
    monkeypatch.setattr(store, "_use_returning", False)
    yield store
    store.close()


def test_take_challenge_without_returning_is_still_single_use(
    without_returning: SqliteStore,
) -> None:
    store = without_returning
    store.put_challenge("c1", {"x": 1}, ttl=60)
    results = race(20, lambda i: store.take_challenge("c1"))
    assert results.count({"x": 1}) == 1
    assert results.count(None) == 19


def test_incr_without_returning_is_still_atomic(without_returning: SqliteStore) -> None:
    store = without_returning
    assert sorted(race(10, lambda i: store.incr("k", ttl=60))) == list(range(1, 11))  # type: ignore[type-var]


# -- several processes on one file ----------------------------------------------------------------


def test_two_processes_racing_for_the_limit_store_exactly_the_limit(path: str) -> None:
    SqliteStore(path, clock=FrozenClock(T0)).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = [
        ctx.Process(target=add_totps_in_process, args=(path, barrier, 10, 5)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert raw_rows(path, "methods") == 5
    assert raw_rows(path, "audit") == 5


def _add_in_forked_child(store: SqliteStore, opened_by: list[int]) -> None:
    store.add_method(method(label="from the child"), limit=5)
    if opened_by[-1] != os.getpid():  # the parent's pooled connection was reused
        raise SystemExit(3)


def test_a_forked_child_opens_its_own_connection(path: str, clock: FrozenClock) -> None:
    opened_by: list[int] = []
    store = SqliteStore(path, clock=clock, on_connect=lambda conn: opened_by.append(os.getpid()))
    store.list_methods("alice")  # the parent now holds an idle pooled connection
    child = multiprocessing.get_context("fork").Process(
        target=_add_in_forked_child, args=(store, opened_by)
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert [m.label for m in store.list_methods("alice")] == ["from the child"]
    store.close()


@pytest.mark.parametrize(
    ("synchronous", "pragma"),
    [
        pytest.param(None, 1, id="by default every connection syncs at checkpoints only (NORMAL)"),
        pytest.param("normal", 1, id="normal asked for is NORMAL"),
        pytest.param("full", 2, id="full asks for an fsync per commit (FULL)"),
    ],
)
def test_every_connection_gets_the_synchronous_level(
    path: str, clock: FrozenClock, synchronous: str | None, pragma: int
) -> None:
    seen: list[int] = []
    chosen = {} if synchronous is None else {"synchronous": synchronous}
    store = SqliteStore(
        path,
        clock=clock,
        on_connect=lambda conn: seen.append(conn.execute("PRAGMA synchronous").fetchone()[0]),
        **chosen,
    )
    race(4, lambda i: store.incr("k", ttl=None))  # several pooled connections
    store.close()
    assert seen and set(seen) == {pragma}


def test_an_unknown_synchronous_level_is_refused(path: str, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="off"):
        SqliteStore(path, clock=clock, synchronous="off")


def _refuse(path: str, trigger: str) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"CREATE TRIGGER refuse {trigger} BEGIN SELECT RAISE(ABORT, 'refused'); END")


def test_a_failed_audit_write_rolls_back_the_counter(path: str, db: SqliteStore) -> None:
    record = method(counter=10)
    db.add_method(record, limit=5)
    _refuse(path, "BEFORE INSERT ON audit")
    with pytest.raises(StoreUnavailable, match="refused"):
        db.advance_counter("alice", record.id, 11, T0, events=[event("mfa.succeeded")])
    got = db.get_method("alice", record.id)
    assert got is not None and got.counter == 10, "the step is still unused"


def test_a_failed_rotation_leaves_the_old_session_and_no_new_one(
    path: str, db: SqliteStore
) -> None:
    db.save_session("old", {"step": 1}, user_id="alice", ttl=60)
    # A rotation moves the row to its new id in one UPDATE: refuse that step.
    _refuse(path, "BEFORE UPDATE ON sessions")
    with pytest.raises(StoreUnavailable, match="refused"):
        db.save_session("new", {"step": 2}, user_id="alice", ttl=60, replaces="old")
    assert db.load_session("new") is None
    assert db.load_session("old") == {"step": 1}


def test_a_failed_reset_in_counters_rolls_back_the_increments(path: str, db: SqliteStore) -> None:
    db.incr("a", ttl=None)
    _refuse(path, "BEFORE DELETE ON counters")
    with pytest.raises(StoreUnavailable, match="refused"):
        db.counters(reset=["a"], incr=[("b", None)])
    assert (db.get_count("a"), db.get_count("b")) == (1, 0)


# -- transaction(): one commit for several calls ---------------------------------------------------


def test_a_store_error_inside_a_transaction_rolls_back_the_whole_block(
    path: str, db: SqliteStore
) -> None:
    db.incr("kept", ttl=None)
    _refuse(path, "BEFORE INSERT ON audit")
    with pytest.raises(StoreUnavailable, match="refused"), db.transaction():
        db.incr("kept", ttl=None)
        db.counters(incr=[("new", None)])
        db.append_audit(event("mfa.failed"))
    assert (db.get_count("kept"), db.get_count("new")) == (1, 0), "nothing of the block stayed"


def test_a_transaction_holds_the_writer_lock_until_it_ends(path: str, clock: FrozenClock) -> None:
    db = SqliteStore(path, clock=clock, busy_timeout=5)
    order: list[str] = []
    started = threading.Event()

    def other_writer() -> None:
        started.set()
        db.incr("k", ttl=None)
        order.append("other wrote")

    with db.transaction():
        db.incr("k", ttl=None)
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert started.wait(5)
        thread.join(0.1)  # time enough to write, were the lock not held
        order.append("block ends")
    thread.join(5)
    assert order == ["block ends", "other wrote"]
    assert db.get_count("k") == 2
    db.close()


def stored_expiry(path: str, key: str) -> float:
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT expires_at FROM sessions WHERE sid = ?", (key,)).fetchone()
        return float(row[0])


def test_a_session_saved_again_within_a_minute_keeps_its_expiry_row(
    path: str, db: SqliteStore, clock: FrozenClock
) -> None:
    """Sliding expiry refreshed at most once a minute: each move rewrites two index pages."""
    db.save_session("k1.first", {"step": 1}, user_id="alice", ttl=3600)
    clock.advance(20)
    db.save_session("k1.second", {"step": 2}, user_id="alice", ttl=3600, replaces="k1.first")
    assert stored_expiry(path, "k1") == T0 + 3600, "within the minute: left where it was"
    assert db.load_session("k1.first") is None and db.load_session("k1.second") == {"step": 2}
    clock.advance(100)
    db.save_session("k1.second", {"step": 3}, user_id="alice", ttl=3600)
    assert stored_expiry(path, "k1") == T0 + 120 + 3600, "older than a minute: moved"
    assert db.load_session("k1.second") == {"step": 3}
    db.save_session("k1.second", {"step": 4}, user_id="alice", ttl=60)
    assert stored_expiry(path, "k1") == T0 + 120 + 60, "a shorter TTL always moves it"


def test_a_rotated_session_keeps_its_row_and_only_the_new_id_opens_it(
    path: str, db: SqliteStore
) -> None:
    db.save_session("k1.first", {"step": 1}, user_id="alice", ttl=3600)
    db.save_session("k1.second", {"step": 2}, user_id="alice", ttl=3600, replaces="k1.first")
    assert raw_rows(path, "sessions") == 1
    assert db.load_session("k1.second") == {"step": 2}
    for wrong in ("k1.first", "k1.", "k1", "k1.secondx", "x.second", "k1.sécond", "k1.\x00"):
        assert db.load_session(wrong) is None, wrong
    db.delete_session("k1.first")  # the old id deletes nothing either
    assert db.load_session("k1.second") == {"step": 2}
    # A request that loaded the session before the rotation saves its stale copy: dropped.
    db.save_session("k1.first", {"step": "stale"}, user_id="alice", ttl=3600)
    assert db.load_session("k1.second") == {"step": 2}
    assert db.load_session("k1.first") is None
    db.delete_session("k1.second")
    assert raw_rows(path, "sessions") == 0


def test_a_version_4_file_lists_methods_in_order_through_migration_5(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 5's index gives a user's methods in listing order (created_at, then the order
    they were added), so neither the listing nor a session's load sorts them any more."""
    clock = FrozenClock(T0)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:4])
        old = SqliteStore(path, clock=clock)
        added = [method(created_at=at) for at in (T0 + 5, T0, T0 + 5, T0 - 1)]
        for record in added:
            old.add_method(record, limit=10, events=[])
        old.close()
    new = SqliteStore(path, clock=clock)
    assert new.schema_version() == len(sqlite_schema.MIGRATIONS)
    expected = [added[3].id, added[1].id, added[0].id, added[2].id]
    assert [m.id for m in new.list_methods("alice")] == expected
    new.save_session("k.s", {}, user_id="alice", ttl=60)
    with request_reads.scope():
        assert new.load_session("k.s") == {}
        assert [m.id for m in new.list_methods("alice")] == expected  # from the load's rows
    new.close()
    with closing(sqlite3.connect(path)) as conn:
        for statement, params in (
            (LOAD_SESSION_WITH_USER, ("k", T0)),
            (LIST_METHODS.format(condition=IN_USE), ("alice",)),
        ):
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)]
            assert not [step for step in plan if "TEMP B-TREE" in step], plan

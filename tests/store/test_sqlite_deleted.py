"""A SQLite file deleted (or replaced) while the store is open: SQLite's open connections would
go on writing into the unlinked file, and every sign-in would be lost on the next restart. The
store notices at the start of each write and fails closed: ``StoreUnavailable``, nothing
written, no new empty database in its place."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import SqliteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "reg.sqlite3"


@pytest.fixture
def db(path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(str(path), clock=FrozenClock(T0))
    store.add_method(method(label="before"), limit=5)
    yield store
    store.close()


def remove_database(path: Path) -> None:
    """What ``rm reg.sqlite3*`` does (the -wal and -shm files too; the writer lock file stays)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_writes_after_the_file_was_deleted_fail_closed(path: Path, db: SqliteStore) -> None:
    remove_database(path)
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        db.add_method(method(label="lost"), limit=5, events=[event()])
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        db.save_session("k.s", {"uid": "alice"}, user_id="alice", ttl=60, create=True)
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        db.incr("c", ttl=60)
    with pytest.raises(StoreUnavailable, match="deleted or replaced"), db.transaction():
        db.list_methods("alice")  # a transaction begins at its first call: the check is there
    assert not path.exists()  # and no empty database took its place


def test_a_file_replaced_under_the_store_is_refused_too(path: Path, db: SqliteStore) -> None:
    other = path.with_name("restored.sqlite3")
    SqliteStore(str(other), clock=FrozenClock(T0)).close()
    os.replace(other, path)
    with pytest.raises(StoreUnavailable, match="deleted or replaced"):
        db.put_challenge("x", {"a": 1}, ttl=60)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM challenges").fetchone()[0] == 0


def test_the_writer_lock_is_free_after_a_refused_write(path: Path, db: SqliteStore) -> None:
    remove_database(path)
    for _ in range(3):  # each refusal let go of the lock: no wait, no "locked" on the next one
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            db.append_audit(event())


def test_an_untouched_file_keeps_working(path: Path, db: SqliteStore) -> None:
    db.add_method(method(label="after"), limit=5)
    assert sorted(m.label for m in db.list_methods("alice")) == ["after", "before"]

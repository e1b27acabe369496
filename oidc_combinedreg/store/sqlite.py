"""The SQLite backend: the embedded default, one file, safe for threads and for several processes.

Choices, and why:

* **WAL journal**: readers never block the writer and the writer never blocks readers, so page
  views stay fast while another worker binds a method.
* **A small connection pool, not ``threading.local``**: threaded WSGI servers may start a thread per
  request; a connection per thread would leak one open file per finished thread. Each call borrows
  an idle connection (or opens one) and gives it back. After a ``fork`` (gunicorn ``--preload``) the
  parent's connections are never reused: SQLite forbids carrying a connection across ``fork``.
* **Explicit transactions** (``isolation_level=None``): multi-statement writes run inside
  ``BEGIN IMMEDIATE``, which takes the write lock before the first read, so "count, then insert"
  cannot interleave with another writer and never hits ``SQLITE_BUSY_SNAPSHOT`` half-way.
* **One writer at a time**, queued on a thread lock and, across processes, an ``flock`` on
  ``<database>-writer`` (``store/sqlite_lock.py``): SQLite's busy handler sleeps and polls (1, 2,
  5, 10 ... ms), which under concurrent requests cost more than the writes.
* **Every ``sqlite3.Error`` becomes** :class:`~oidc_combinedreg.exceptions.StoreUnavailable` after a
  rollback (locked past the busy timeout, disk full, read-only file, I/O error): callers fail closed
  and nothing is half-written.
* **``synchronous = NORMAL`` by default** (``FULL`` on request): in WAL mode a commit is then
  written to the WAL without an fsync, which happens at checkpoints. A process crash loses
  nothing committed; a power loss or kernel crash may roll back the last commits. ``FULL``
  fsyncs every commit, which makes writes several times slower (docs/storage.md, "Durability").
* **Expiry by the injected clock**: rows carry ``expires_at`` and are invisible once
  ``expires_at <= clock.now()``; expired rows are deleted every few writes (:meth:`purge_expired`).
"""

from __future__ import annotations

import functools
import hmac
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.config.model import SqliteSynchronous
from oidc_combinedreg.exceptions import (
    InvalidInput,
    LimitReached,
    MethodsChanged,
    StoreUnavailable,
)
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.sqlite_lock import WriterLock
from oidc_combinedreg.store.sqlite_schema import MIGRATIONS, migrate, schema_version

__all__ = ["MIGRATIONS", "SqliteStore"]

log = logging.getLogger("oidc_combinedreg.store")

# DELETE/INSERT ... RETURNING arrived in SQLite 3.35; older libraries take a short write lock.
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_MAX_IDLE = 16
_PURGE_EVERY = 64
#: writes between two checkpoints (an MFA verify commits one write of about 6 pages)
_CHECKPOINT_EVERY = 200
#: WAL frames a checkpoint may leave to its last step, which holds the writer lock
_CHECKPOINT_TAIL = 256
#: WAL frames (pages) past which a checkpoint makes the WAL start over: one WAL-index block
_WAL_RESTART_FRAMES = 4096
#: bytes the WAL file is cut back to when it starts over (SQLite keeps its largest size otherwise)
_WAL_SIZE_LIMIT = 32 * 1024 * 1024
#: connections inherited across fork: kept referenced, never used or closed (see module docstring)
_INHERITED: list[sqlite3.Connection] = []

_METHOD_COLUMNS = (
    "id, user_id, kind, label, created_at, data, secret, counter, last_used_at, lookup, reported_at"
)
_INSERT_METHOD = f"INSERT INTO methods ({_METHOD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: a method in use: not suspended by "This wasn't me" (store/base.py)
_IN_USE = "reported_at IS NULL"
_AUDIT_COLUMNS = "at, event, user_id, outcome, ip, correlation_id, detail"
_ADVANCE = (
    "UPDATE methods SET counter = ?, last_used_at = ?"
    f" WHERE id = ? AND user_id = ? AND counter < ? AND {_IN_USE}"
)
# A new session. A row with the same key and another secret is the same session rotated by a
# parallel request since this one loaded it: the stale copy is dropped, never written over it.
_SAVE_SESSION = """
    INSERT INTO sessions (sid, secret, user_id, data, expires_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (sid) DO NOTHING"""
# An existing row is updated in place, its secret replaced by a rotation's. SQLite rewrites the
# index entries of every column a SET names, changed or not: the common save (same user, expiry
# already within a minute, at most 1% of the TTL, of the new one) names neither, and leaves both
# indexes alone. Otherwise the full one.
_UPDATE_SESSION_DATA = """
    UPDATE sessions SET secret = ?, data = ?
    WHERE sid = ? AND secret = ? AND user_id IS ? AND expires_at BETWEEN ? AND ?"""
_UPDATE_SESSION = """
    UPDATE sessions SET sid = ?, secret = ?, user_id = ?, data = ?, expires_at = ?
    WHERE sid = ? AND secret = ? AND expires_at > ?"""
#: at most how many seconds a session's sliding expiry lags behind "now + ttl"
_EXPIRY_SLACK = 60.0
_GET_COUNT = "SELECT value FROM counters WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
_GET_COUNTS = (
    "SELECT key, value FROM counters WHERE key IN ({marks})"
    " AND (expires_at IS NULL OR expires_at > ?)"
)
_INCR = """
    INSERT INTO counters (key, value, expires_at) VALUES (:key, 1, :expires)
    ON CONFLICT (key) DO UPDATE SET
        value = CASE WHEN expires_at <= :now THEN 1 ELSE value + 1 END,
        expires_at = CASE WHEN expires_at <= :now THEN :expires ELSE expires_at END"""


@functools.lru_cache(maxsize=8)
def _incr_many(count: int) -> str:
    """``count`` increments (``key, expires_at`` pairs, then ``now`` twice) in one statement."""
    rows = ", ".join(["(?, 1, ?)"] * count)
    return (
        f"INSERT INTO counters (key, value, expires_at) VALUES {rows}"
        " ON CONFLICT (key) DO UPDATE SET"
        " value = CASE WHEN expires_at <= ? THEN 1 ELSE value + 1 END,"
        " expires_at = CASE WHEN expires_at <= ? THEN excluded.expires_at ELSE expires_at END"
        " RETURNING key, value"
    )


def _delete_counters(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
    if keys:
        marks = ", ".join("?" * len(keys))
        conn.execute(f"DELETE FROM counters WHERE key IN ({marks})", list(keys))


def _split_sid(sid: str) -> tuple[str, str]:
    """A session id's key and secret: ``<key>.<secret>`` (``SessionManager`` keeps the key for
    the session's life and draws a new secret at each rotation); an id without a dot is all key.
    """
    key, dot, secret = sid.rpartition(".")
    return (key, secret) if dot else (sid, "")


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)


def _method_params(record: MethodRecord) -> tuple[Any, ...]:
    r = record
    return (r.id, r.user_id, str(r.kind), r.label, r.created_at, _dumps(r.data), r.secret,
            r.counter, r.last_used_at, r.lookup, r.reported_at)  # fmt: skip


def _method_from_row(row: sqlite3.Row) -> MethodRecord:
    return MethodRecord(
        id=row["id"],
        user_id=row["user_id"],
        kind=MethodKind(row["kind"]),
        label=row["label"],
        created_at=row["created_at"],
        data=json.loads(row["data"]),
        secret=bytes(row["secret"]),
        counter=row["counter"],
        last_used_at=row["last_used_at"],
        lookup=row["lookup"],
        reported_at=row["reported_at"],
    )


def _audit_params(event: AuditEvent) -> tuple[Any, ...]:
    return (event.at, event.event, event.user_id, event.outcome, event.ip, event.correlation_id,
            _dumps(event.detail))  # fmt: skip


def _audit_from_row(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        at=row["at"],
        event=row["event"],
        user_id=row["user_id"],
        outcome=row["outcome"],
        ip=row["ip"],
        correlation_id=row["correlation_id"],
        detail=json.loads(row["detail"]),
    )


def _insert_audit(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    conn.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _lookup_taken(conn: sqlite3.Connection, lookup: str) -> bool:
    return conn.execute("SELECT 1 FROM methods WHERE lookup = ?", (lookup,)).fetchone() is not None


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.rollback()
    except sqlite3.Error:
        pass  # the connection is unusable; it is closed when returned


class SqliteStore:
    """The :class:`~oidc_combinedreg.store.base.Store` on one SQLite file.

    ``path`` is a file name or a ``file:`` URI (``file:/srv/reg.db?mode=ro`` for a read-only
    reporting copy). ``busy_timeout`` is how long a write waits for another writer before
    :class:`StoreUnavailable`. ``synchronous`` is ``"normal"`` (a commit survives a process
    crash, the last ones may be lost on power loss) or ``"full"`` (an fsync per commit).
    ``on_connect`` runs on every new connection, after the store's own pragmas (extra pragmas,
    tracing).
    """

    def __init__(
        self,
        path: str,
        *,
        clock: Clock,
        busy_timeout: float = 5.0,
        synchronous: SqliteSynchronous | str = SqliteSynchronous.NORMAL,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        if path in ("", ":memory:") or "mode=memory" in path:
            raise ValueError("SqliteStore needs a file; use MemoryStore for an in-process store")
        self._path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._synchronous = SqliteSynchronous(synchronous)  # ValueError for anything else
        self._on_connect = on_connect
        self._lock = threading.Lock()
        #: the connection of this thread's open :meth:`transaction`, if any
        self._local = threading.local()
        #: serializes writes, of this process's threads and of processes (see :meth:`_writing`)
        self._writer = WriterLock(None)
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._writes = itertools.count(1)
        self._commits = itertools.count(1)
        #: the process whose checkpoint thread is running (0: none)
        self._checkpointing = 0
        self._use_returning = _HAS_RETURNING
        #: (path, st_dev, st_ino) of the database file this store opened (see _check_file)
        self._file: tuple[str, int, int] | None = None
        self._file_lost = False
        self._open_file(path, clock.now())

    def _open_file(self, path: str, now: float) -> None:
        # Switching a fresh file to WAL can answer "database is locked" at once, without waiting
        # in the busy handler, when several processes open it together: retry within the timeout.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                with self._connection() as conn:
                    conn.execute("PRAGMA journal_mode = WAL")
                    migrate(conn, path, now)
                    # The file SQLite opened (a "file:" URI resolved): the lock file sits next to it.
                    main = conn.execute("PRAGMA database_list").fetchone()["file"]
                self._writer = WriterLock(f"{main}-writer" if main else None)
                if main:
                    st = os.stat(main)
                    self._file = (main, st.st_dev, st.st_ino)
                return
            except StoreUnavailable as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    def _check_file(self) -> None:
        """At the start of every write, under the writer lock: is the file at the path still
        the one the connections have open? Deleted (``rm``) or replaced (a restore moved over
        it), SQLite's open connections would go on writing into the unlinked file, and every
        sign-in since would be gone at the next start. One ``stat`` per write transaction
        (about a microsecond; reads are not checked): fail closed instead."""
        if self._file is None:
            return
        main, dev, ino = self._file
        try:
            st = os.stat(main)
        except OSError:
            st = None
        if st is None or st.st_ino != ino or st.st_dev != dev:
            if not self._file_lost:  # once: the web layer logs each refused request
                self._file_lost = True
                log.error("SQLite database %s was deleted or replaced while open", main)
            raise StoreUnavailable(
                f"SQLite store {self._path}: the database file was deleted or replaced while "
                "the store had it open; nothing was written (restart to open the file again)"
            )

    # -- connections --------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,  # autocommit; multi-statement writes use BEGIN IMMEDIATE
            check_same_thread=False,  # pooled: used by one thread at a time, closed by any
            uri=True,  # a plain path stays a plain path; "file:" names are URIs
        )
        conn.row_factory = sqlite3.Row
        try:
            # Per connection, not stored in the file: every pooled connection needs it.
            conn.execute(f"PRAGMA synchronous = {self._synchronous.value.upper()}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            if self._on_connect is not None:
                self._on_connect(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreUnavailable(f"{self!r} is closed")
            if os.getpid() != self._pid:
                _INHERITED.extend(self._idle)
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            reusable = not self._closed and os.getpid() == self._pid
            if reusable and not conn.in_transaction and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection; any sqlite error rolls back and becomes ``StoreUnavailable``.

        Inside :meth:`transaction`, the transaction's connection (its own writes visible),
        begun by the block's first call; the transaction rolls back or commits when it ends."""
        local = self._local
        active: sqlite3.Connection | None = getattr(local, "conn", None)
        if active is None and getattr(local, "pending", False):
            active = self._begin()
        if active is not None:
            try:
                yield active
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from exc
            return
        try:
            conn = self._checkout()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            _rollback_quietly(conn)
            raise self._unavailable(exc) from exc
        except BaseException:
            _rollback_quietly(conn)
            raise
        finally:
            self._checkin(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is held from the first read."""
        if self._in_transaction():
            with self._connection() as conn:  # part of the enclosing transaction
                yield conn
            return
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The store calls of this thread inside the block run as one write transaction, under
        the writer lock (see ``Store.transaction``). A block that raises anything but
        ``StoreUnavailable`` still commits what its calls wrote: a refused code stays counted.
        Nested blocks join the outer one.

        The transaction begins with the block's first store call, not with the block: what the
        block computes before it (a code check's decryption and HMACs) runs without the lock,
        which the other writers are waiting for."""
        local = self._local
        if self._in_transaction():
            yield
            return
        local.pending, commit = True, True
        try:
            yield
        except StoreUnavailable:
            commit = False
            raise
        finally:
            local.pending = False
            self._finish(commit=commit)

    def serialized(self) -> bool:
        return self._in_transaction()  # BEGIN IMMEDIATE under the writer lock: one writer

    def _in_transaction(self) -> bool:
        local = self._local
        return getattr(local, "conn", None) is not None or getattr(local, "pending", False)

    def _begin(self) -> sqlite3.Connection:
        """The first call inside :meth:`transaction`: the writer lock, then ``BEGIN IMMEDIATE``."""
        writer = self._writer
        if not writer.acquire(timeout=self._busy_timeout):
            raise StoreUnavailable(f"SQLite store {self._path}: database is locked (writer lock)")
        try:
            self._check_file()
            conn = self._checkout()
        except BaseException as exc:
            writer.release()
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc) from exc
            raise
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._checkin(conn)
            writer.release()
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc) from exc
            raise
        self._local.conn = conn
        return conn

    def _finish(self, *, commit: bool) -> None:
        """The end of :meth:`transaction`: commit (or roll back) what it began, if anything."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return  # the block made no store call
        self._local.conn = None
        try:
            if commit:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            if conn.in_transaction:
                _rollback_quietly(conn)
            self._checkin(conn)
            self._writer.release()
        self._committed()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for a write, taken after the writer lock.

        Writers queue on a lock that hands over at once (threads) or within microseconds
        (processes), instead of meeting in SQLite's busy handler, which sleeps (1, 2, 5, 10 ...
        ms) and polls: under concurrent requests those sleeps, not the writes, were the cost.
        """
        if self._in_transaction():
            with self._connection() as conn:  # the enclosing transaction holds the lock
                yield conn
            return
        writer = self._writer
        if not writer.acquire(timeout=self._busy_timeout):
            raise StoreUnavailable(f"SQLite store {self._path}: database is locked (writer lock)")
        try:
            self._check_file()
            with self._connection() as conn:
                yield conn
        finally:
            writer.release()
        self._committed()

    def _committed(self) -> None:
        """After a write (the writer lock let go): every ``_CHECKPOINT_EVERY`` writes, start a
        checkpoint in a thread of its own, unless this process has one running.

        SQLite's automatic checkpoint runs inside the commit that crosses 1000 pages, so it
        held the writer lock while it copied and fsynced megabytes: every other writer waited.
        Connections here turn it off (``wal_autocheckpoint = 0``). Run by the request that
        crossed the count, it still made that request wait (about 17 ms for 200 MFA verifies'
        pages): in a thread, the fsync waits while requests go on."""
        if next(self._commits) % _CHECKPOINT_EVERY:
            return
        pid = os.getpid()
        with self._lock:
            # A flag copied by fork names the parent: a thread that does not run here.
            if self._closed or self._checkpointing == pid:
                return
            self._checkpointing = pid
        threading.Thread(
            target=self._checkpoint, name="combinedreg-sqlite-checkpoint", daemon=True
        ).start()

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database, and now and then let the WAL start over.

        PASSIVE checkpoints, without the writer lock: the copy and its fsyncs run while writers
        go on appending. But a checkpoint copies only the frames written before it began, and
        the WAL starts over from its beginning only when a write begins with all of it copied:
        under a steady stream of writes that never happened, and the WAL grew without end (900
        MB after 60,000 writes), every read searching a longer WAL index. So once the WAL holds
        ``_WAL_RESTART_FRAMES``, a last pass copies the frames appended meanwhile under the
        writer lock (about 2 ms here, with its fsyncs: once every few hundred writes, not every
        checkpoint), and the next write starts the WAL over (docs/storage.md)."""
        try:
            with self._connection() as conn:
                for _ in range(3):
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames - copied <= _CHECKPOINT_TAIL:
                        break
                else:
                    return  # writers outpace the copy: the next checkpoint goes on from here
                # Even when that pass copied it all: a writer may have appended since.
                if frames >= _WAL_RESTART_FRAMES and self._writer.acquire(self._busy_timeout):
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    finally:
                        self._writer.release()
        except StoreUnavailable:
            pass  # housekeeping only: the next one catches up
        finally:
            with self._lock:
                self._checkpointing = 0

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return StoreUnavailable(f"{self._path} is not an SQLite database or is corrupt: {exc}")
        return StoreUnavailable(f"SQLite store {self._path}: {exc}")

    def _written(self) -> None:
        """Called after writes of ephemeral rows: purge expired rows now and then."""
        if next(self._writes) % _PURGE_EVERY == 0:
            try:
                self.purge_expired()
            except StoreUnavailable:
                pass  # housekeeping only; the next purge will catch up

    def purge_expired(self) -> int:
        """Delete expired sessions, challenges and windowed counters; returns how many rows."""
        now = self._clock.now()
        with self._transaction() as conn:
            deleted = 0
            for table in ("sessions", "challenges", "counters"):
                cur = conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))
                deleted += cur.rowcount
        return deleted

    def schema_version(self) -> int:
        """The migration number the file is at."""
        with self._connection() as conn:
            return schema_version(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._writer.close()

    # -- methods ------------------------------------------------------------------------------

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_METHOD_COLUMNS} FROM methods WHERE user_id = ? AND {_IN_USE}"
                " ORDER BY created_at, rowid",
                (user_id,),
            ).fetchall()
        return [_method_from_row(row) for row in rows]

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_METHOD_COLUMNS} FROM methods WHERE user_id = ? AND NOT {_IN_USE}"
                " ORDER BY created_at, rowid",
                (user_id,),
            ).fetchall()
        return [_method_from_row(row) for row in rows]

    def report_methods(
        self,
        state: UserState,
        method_ids: Collection[str],
        *,
        at: float,
        events: Sequence[AuditEvent] = (),
    ) -> int:
        ids = list(method_ids)
        with self.transaction():  # one commit: the suspension, the sessions, state and events
            if ids:
                with self._transaction() as conn:
                    conn.execute(
                        f"UPDATE methods SET reported_at = ? WHERE user_id = ? AND {_IN_USE}"
                        f" AND id IN ({', '.join('?' * len(ids))})",
                        [at, state.user_id, *ids],
                    )
            live = self.delete_user_sessions(state.user_id)
            self.put_user_state(state, events=events)
        return live

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        audit = [_audit_params(event) for event in events]
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT kind FROM methods WHERE id = ? AND user_id = ? AND NOT {_IN_USE}",
                (method_id, user_id),
            ).fetchone()
            if row is None:
                return False
            (count,) = conn.execute(
                f"SELECT count(*) FROM methods WHERE user_id = ? AND kind = ? AND {_IN_USE}",
                (user_id, row["kind"]),
            ).fetchone()
            if count >= limit:
                raise LimitReached(str(row["kind"]), limit)
            conn.execute("UPDATE methods SET reported_at = NULL WHERE id = ?", (method_id,))
            _insert_audit(conn, audit)
        return True

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_METHOD_COLUMNS} FROM methods WHERE id = ? AND user_id = ? AND {_IN_USE}",
                (method_id, user_id),
            ).fetchone()
        return None if row is None else _method_from_row(row)

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {_METHOD_COLUMNS} FROM methods WHERE lookup = ? AND {_IN_USE}", (lookup,)
            ).fetchone()
        return None if row is None else _method_from_row(row)

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        params = _method_params(record)  # serialize before taking the lock
        audit = [_audit_params(event) for event in events]
        with self._transaction() as conn:
            (count,) = conn.execute(
                f"SELECT count(*) FROM methods WHERE user_id = ? AND kind = ? AND {_IN_USE}",
                (record.user_id, str(record.kind)),
            ).fetchone()
            if count >= limit:
                raise LimitReached(str(record.kind), limit)
            if record.lookup is not None and _lookup_taken(conn, record.lookup):
                raise InvalidInput("lookup", "already registered")
            try:
                conn.execute(_INSERT_METHOD, params)
            except sqlite3.IntegrityError:
                raise InvalidInput("id", "a method with this id exists") from None
            _insert_audit(conn, audit)

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        data, audit = _dumps(record.data), [_audit_params(event) for event in events]
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE methods SET label = ?, data = ?, secret = ?"
                f" WHERE id = ? AND user_id = ? AND {_IN_USE}",
                (record.label, data, record.secret, record.id, record.user_id),
            )
            if cur.rowcount == 0:
                return False
            _insert_audit(conn, audit)
        return True

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        audit = [_audit_params(event) for event in events]
        with self._transaction() as conn:
            if if_methods is not None:
                rows = conn.execute(
                    f"SELECT id FROM methods WHERE user_id = ? AND {_IN_USE}", (user_id,)
                )
                if {row["id"] for row in rows} != set(if_methods):
                    raise MethodsChanged(f"the methods of {user_id!r} changed")
            cur = conn.execute(
                "DELETE FROM methods WHERE id = ? AND user_id = ?", (method_id, user_id)
            )
            if cur.rowcount == 0:
                return False
            _insert_audit(conn, audit)
        return True

    def advance_counter(
        self,
        user_id: str,
        method_id: str,
        value: int,
        used_at: float,
        *,
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool:
        # One conditional UPDATE: SQLite runs it under the write lock, so of two callers with the
        # same value exactly one sees rowcount 1. With events or resets, all in one transaction.
        params = (value, used_at, method_id, user_id, value)
        if not events and not reset:
            with self._writing() as conn:
                return bool(conn.execute(_ADVANCE, params).rowcount == 1)
        audit = [_audit_params(event) for event in events]
        with self._transaction() as conn:
            if conn.execute(_ADVANCE, params).rowcount != 1:
                return False  # COMMIT of nothing: the transaction wrote no row
            _insert_audit(conn, audit)
            _delete_counters(conn, reset)
        return True

    # -- per-user state -----------------------------------------------------------------------

    def get_user_state(self, user_id: str) -> UserState:
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM user_state WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return UserState(user_id=user_id)
        return UserState(
            user_id=row["user_id"],
            default_method_id=row["default_method_id"],
            skips_used=row["skips_used"],
            snoozed_until=row["snoozed_until"],
            confirmed_at=row["confirmed_at"],
            reregister=bool(row["reregister"]),
            extra=json.loads(row["extra"]),
        )

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None:
        params = (state.user_id, state.default_method_id, state.skips_used, state.snoozed_until,
                  state.confirmed_at, int(state.reregister), _dumps(state.extra))  # fmt: skip
        audit = [_audit_params(event) for event in events]
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO user_state (user_id, default_method_id, skips_used,"
                " snoozed_until, confirmed_at, reregister, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            _insert_audit(conn, audit)

    def list_user_ids(self) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT user_id FROM methods UNION SELECT user_id FROM user_state ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    # -- sessions -----------------------------------------------------------------------------

    def load_session(self, sid: str) -> dict[str, Any] | None:
        key, secret = _split_sid(sid)
        with self._connection() as conn:
            row = conn.execute(
                "SELECT secret, data FROM sessions WHERE sid = ? AND expires_at > ?",
                (key, self._clock.now()),
            ).fetchone()
        # Bytes: compare_digest refuses str with characters beyond ASCII, and a cookie may
        # hold anything.
        if row is None or not hmac.compare_digest(str(row["secret"]).encode(), secret.encode()):
            return None
        return dict(json.loads(row["data"]))

    def save_session(
        self,
        sid: str,
        data: Mapping[str, Any],
        *,
        user_id: str | None,
        ttl: float,
        replaces: str | None = None,
        create: bool = True,
    ) -> bool:
        now = self._clock.now()
        expires_at = now + ttl
        text = _dumps(data)
        key, secret = _split_sid(sid)
        old_key, old_secret = _split_sid(replaces or sid)
        slack = min(_EXPIRY_SLACK, ttl / 100)
        params = (key, secret, user_id, text, expires_at)
        # Saving a loaded session needs it live; a new one may take over an expired row.
        live_after = now if not create else float("-inf")
        quick = (secret, text, key, old_secret, user_id, expires_at - slack, expires_at)
        with self._writing() as conn:
            updated = key == old_key and conn.execute(_UPDATE_SESSION_DATA, quick).rowcount == 1
            if not updated:
                full = (*params, old_key, old_secret, live_after)
                updated = conn.execute(_UPDATE_SESSION, full).rowcount == 1
            if not updated:
                if not create:
                    return False  # ended meanwhile (signed out, revoked, expired): stays ended
                conn.execute(_SAVE_SESSION, params)
        self._written()
        return True

    def delete_session(self, sid: str) -> None:
        with self._writing() as conn:
            conn.execute("DELETE FROM sessions WHERE sid = ? AND secret = ?", _split_sid(sid))

    def delete_user_sessions(self, user_id: str) -> int:
        now = self._clock.now()
        with self._transaction() as conn:
            live = conn.execute(
                "DELETE FROM sessions WHERE user_id = ? AND expires_at > ?", (user_id, now)
            ).rowcount
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        return live

    # -- single-use challenges ----------------------------------------------------------------

    def put_challenge(self, key: str, data: Mapping[str, Any], *, ttl: float) -> None:
        params = (key, _dumps(data), self._clock.now() + ttl)
        with self._writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO challenges (key, data, expires_at) VALUES (?, ?, ?)", params
            )
        self._written()

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        if self._use_returning:
            with self._writing() as conn:
                # fetchall() runs the statement to completion, which ends its implicit transaction
                rows = conn.execute(
                    "DELETE FROM challenges WHERE key = ? RETURNING data, expires_at", (key,)
                ).fetchall()
        else:
            with self._transaction() as conn:
                rows = conn.execute(
                    "SELECT data, expires_at FROM challenges WHERE key = ?", (key,)
                ).fetchall()
                conn.execute("DELETE FROM challenges WHERE key = ?", (key,))
        if not rows or rows[0]["expires_at"] <= self._clock.now():
            return None
        return dict(json.loads(rows[0]["data"]))

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT data FROM challenges WHERE key = ? AND expires_at > ?",
                (key, self._clock.now()),
            ).fetchone()
        return None if row is None else dict(json.loads(row["data"]))

    # -- counters -----------------------------------------------------------------------------

    def incr(self, key: str, *, ttl: float | None) -> int:
        now = self._clock.now()
        if self._use_returning:
            with self._writing() as conn:
                value = self._incr_in(conn, key, ttl, now)
        else:
            with self._transaction() as conn:
                value = self._incr_in(conn, key, ttl, now)
        self._written()
        return value

    def _incr_in(self, conn: sqlite3.Connection, key: str, ttl: float | None, now: float) -> int:
        """One increment on ``conn``: a statement of its own, or part of the caller's transaction."""
        params = {"key": key, "now": now, "expires": None if ttl is None else now + ttl}
        if self._use_returning:
            # fetchall() runs the statement to completion (ending an implicit transaction)
            rows = conn.execute(_INCR + " RETURNING value", params).fetchall()
        else:
            conn.execute(_INCR, params)
            rows = conn.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchall()
        return int(rows[0]["value"])

    def get_count(self, key: str) -> int:
        with self._connection() as conn:
            row = conn.execute(_GET_COUNT, (key, self._clock.now())).fetchone()
        return 0 if row is None else int(row["value"])

    def reset_count(self, key: str) -> None:
        with self._writing() as conn:
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))

    def counters(
        self,
        *,
        incr: Sequence[tuple[str, float | None]] = (),
        read: Sequence[str] = (),
        reset: Sequence[str] = (),
    ) -> list[int]:
        if not (incr or read or reset):
            return []
        now = self._clock.now()
        keys = [key for key, _ in incr]
        if incr and not reset and self._use_returning and len(set(keys)) == len(keys):
            # The throttle's attempt: every increment in one statement, so the write lock is
            # held for one step (each statement lets other threads run, and the lock waits for
            # this one to get the GIL back); the reads need no lock.
            params = [v for key, ttl in incr for v in (key, None if ttl is None else now + ttl)]
            with self._writing() as conn:
                rows = conn.execute(_incr_many(len(incr)), [*params, now, now]).fetchall()
            by_key = {row["key"]: int(row["value"]) for row in rows}
            values = [by_key[key] for key in keys]
            if read:
                with self._connection() as conn:
                    values += [self._count(conn, key, now) for key in read]
            self._written()
            return values
        if not (incr or reset) and len(read) > 1:
            with self._connection() as conn:  # one statement for all the reads
                marks = ", ".join("?" * len(read))
                rows = conn.execute(_GET_COUNTS.format(marks=marks), [*read, now]).fetchall()
            found = {row["key"]: int(row["value"]) for row in rows}
            return [found.get(key, 0) for key in read]
        values = []
        # Writes in one transaction: one commit (and one lock acquisition) for the whole call.
        with self._transaction() if incr or reset else self._connection() as conn:
            _delete_counters(conn, reset)
            values += [self._incr_in(conn, key, ttl, now) for key, ttl in incr]
            values += [self._count(conn, key, now) for key in read]
        if incr:
            self._written()
        return values

    @staticmethod
    def _count(conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute(_GET_COUNT, (key, now)).fetchone()
        return 0 if row is None else int(row["value"])

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        params = _audit_params(event)
        with self._writing() as conn:
            _insert_audit(conn, [params])

    def list_audit(
        self,
        *,
        user_id: str | None = None,
        event_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first; ``since <= at < until``; ``event_prefix`` starts ``event``."""
        clauses: list[str] = []
        params: list[Any] = []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if event_prefix is not None:
            clauses.append("substr(event, 1, ?) = ?")
            params += [len(event_prefix), event_prefix]
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("at < ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit {where} ORDER BY at DESC, id DESC LIMIT ?",
                [*params, max(limit, 0)],
            ).fetchall()
        return [_audit_from_row(row) for row in rows]

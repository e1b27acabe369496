"""The SQLite store's connections: the pool, the writer lock, transactions, checkpoints.

:class:`SqliteConnection` is the base of the store's parts (sqlite_methods.py,
sqlite_ephemeral.py, sqlite_audit.py; joined in sqlite.py). Every statement runs on a connection
from :meth:`SqliteConnection._connection` (reads), :meth:`~SqliteConnection._writing` (one write
under the writer lock) or :meth:`~SqliteConnection._transaction` (``BEGIN IMMEDIATE``); any
``sqlite3.Error`` becomes ``StoreUnavailable`` after a rollback. Why each choice: store/sqlite.py's
docstring.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.config.model import SqliteSynchronous
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.deferred_transaction import DeferredTransaction
from oidc_combinedreg.store.sqlite_lock import WriterLock, fork_generation
from oidc_combinedreg.store.sqlite_schema import migrate, schema_version

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
#: connections inherited across fork: kept referenced, never used or closed (store/sqlite.py's docstring)
_INHERITED: list[sqlite3.Connection] = []


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.rollback()
    except sqlite3.Error:
        pass  # the connection is unusable; it is closed when returned


class _Borrowed:
    """``with store._connection() as conn``: this thread's transaction's connection, or one
    from the pool (rolled back if the block fails, given back after it). Any ``sqlite3.Error``
    leaves the block as ``StoreUnavailable``.

    A class rather than ``@contextmanager``: an MFA verify borrows seven times, and the
    generator's set-up and teardown cost about 2 us each (benchmarks/verify_profile.py)."""

    __slots__ = ("_conn", "_own", "_store")

    def __init__(self, store: SqliteConnection) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        local = store._local
        active: sqlite3.Connection | None = getattr(local, "conn", None)
        if active is None and getattr(local, "pending", False):
            active = store._begin()
        if active is not None:
            self._conn, self._own = active, False
            return active
        try:
            conn = store._checkout()
        except sqlite3.Error as exc:
            raise store._unavailable(exc) from exc
        self._conn, self._own = conn, True
        return conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._own:  # the transaction's: it rolls back or commits when it ends
            if exc is not None and isinstance(exc, sqlite3.Error):
                raise self._store._unavailable(exc) from exc
            return
        conn = self._conn
        try:
            if exc is not None:
                _rollback_quietly(conn)
                if isinstance(exc, sqlite3.Error):
                    raise self._store._unavailable(exc) from exc
        finally:
            self._store._checkin(conn)


class SqliteConnection(DeferredTransaction):
    """What every part of :class:`~oidc_combinedreg.store.sqlite.SqliteStore` reaches the file
    through (the constructor's parameters are described there)."""

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
        #: the process the pool's connections belong to (sqlite_lock.fork_generation)
        self._generation = fork_generation()
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
            if fork_generation() != self._generation:
                _INHERITED.extend(self._idle)
                self._idle, self._generation = [], fork_generation()
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            reusable = not self._closed and fork_generation() == self._generation
            if reusable and not conn.in_transaction and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _connection(self) -> _Borrowed:
        """A pooled connection; any sqlite error rolls back and becomes ``StoreUnavailable``.

        Inside :meth:`transaction`, the transaction's connection (its own writes visible),
        begun by the block's first call; the transaction rolls back or commits when it ends."""
        return _Borrowed(self)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is held from the first read."""
        if self._in_transaction():
            return _Borrowed(self)  # part of the enclosing transaction
        return self._immediate()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")

    def serialized(self) -> bool:
        return self._in_transaction()  # BEGIN IMMEDIATE under the writer lock: one writer

    def _begin(self) -> sqlite3.Connection:
        """The first call inside :meth:`transaction`: the writer lock, then ``BEGIN IMMEDIATE``."""
        request_reads.drop(self)  # see _locked_write
        writer = self._locked_writer()
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

    def _locked_writer(self) -> WriterLock:
        """The writer lock, taken (within ``busy_timeout``), for the caller to release."""
        writer = self._writer
        if not writer.acquire(timeout=self._busy_timeout):
            raise StoreUnavailable(f"SQLite store {self._path}: database is locked (writer lock)")
        return writer

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

    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """A pooled connection for a write, taken after the writer lock.

        Writers queue on a lock that hands over at once (threads) or within microseconds
        (processes), instead of meeting in SQLite's busy handler, which sleeps (1, 2, 5, 10 ...
        ms) and polls: under concurrent requests those sleeps, not the writes, were the cost.
        """
        if self._in_transaction():
            return _Borrowed(self)  # the enclosing transaction holds the lock
        return self._locked_write()

    @contextmanager
    def _locked_write(self) -> Iterator[sqlite3.Connection]:
        # Every change goes through here or _begin: what a session's load kept in this request
        # (sqlite_reads.py) may be stale after it, so it is dropped first. A read changes
        # nothing, and a load keeps only outside a transaction.
        request_reads.drop(self)
        writer = self._locked_writer()
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

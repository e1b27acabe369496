"""The PostgreSQL store's connections: the pool, transactions, errors, housekeeping
(store/postgres.py has the store's calls and the reasons for these choices)."""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.deferred_transaction import DeferredTransaction
from oidc_combinedreg.store.postgres_schema import MIGRATIONS, migrate, schema_version
from oidc_combinedreg.store.session_plan import SessionPlans

__all__ = ["Conn", "PostgresConnections", "migrate_database"]

log = logging.getLogger("oidc_combinedreg.store")

Conn = psycopg.Connection[tuple[Any, ...]]
_PURGE_EVERY = 64
#: operational errors that leave the connection working: no pool check after them
_CONNECTION_KEPT = (errors.QueryCanceled, errors.LockNotAvailable, PoolTimeout)
#: pools inherited across fork: kept referenced, never used or closed (store/postgres.py)
_INHERITED: list[ConnectionPool[Any]] = []


def _describe(conninfo: str) -> str:
    """``host:port/dbname`` for messages: never the password a DSN may hold."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgres"
    host = parts.get("host") or os.environ.get("PGHOST", "")
    port = parts.get("port") or os.environ.get("PGPORT", "")
    db = parts.get("dbname") or os.environ.get("PGDATABASE", "")
    return f"postgres {host}{':' if port else ''}{port}/{db}"


def migrate_database(conninfo: str, *, now: float, connect_timeout: float = 5.0) -> tuple[int, int]:
    """``combinedreg migrate``: on a connection of its own (no pool, no statement timeout: a
    migration may take long), apply the missing migrations. Returns (applied, version)."""
    name = _describe(conninfo)
    try:
        with psycopg.connect(
            conninfo, autocommit=True, connect_timeout=max(2, round(connect_timeout))
        ) as conn:
            applied = migrate(conn, name, now)
            return applied, schema_version(conn)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"{name}: {type(exc).__name__}: {exc}") from exc


class PostgresConnections(DeferredTransaction):
    """The connections of a :class:`~oidc_combinedreg.store.postgres.PostgresStore`.

    ``conninfo`` is a libpq connection string or URI (empty: the ``PG*`` environment variables).
    ``min_size``/``max_size`` bound the pool; ``pool_timeout`` is how long a call waits for a free
    connection, ``connect_timeout`` for a new one, ``statement_timeout`` for a statement (each
    past it: :class:`StoreUnavailable`). ``migrate``: bring the schema up to date at open
    (``combinedreg migrate``, development); otherwise a database behind this package is refused.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        clock: Clock,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        statement_timeout: float = 5.0,
        migrate: bool = True,
    ) -> None:
        self._conninfo = conninfo
        self._name = _describe(conninfo)
        self._clock = clock
        self._sizes = (min_size, max_size)
        self._pool_timeout = pool_timeout
        self._connect_timeout = max(2, round(connect_timeout))  # libpq: whole seconds, >= 2
        self._statement_ms = round(statement_timeout * 1000)
        self._lock = threading.Lock()
        self._local = threading.local()
        #: per thread: the open block's planned session save
        self._plans = SessionPlans()
        self._writes = itertools.count(1)
        self._closed = False
        self._pid = os.getpid()
        self._pool = self._new_pool()
        try:
            self._prepare(migrate)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"

    # -- connections --------------------------------------------------------------------------

    def _new_pool(self) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self._pool_timeout,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout},
            configure=self._configure,
            # The pool retries a failed connect with a backoff that doubles up to this long
            # (psycopg_pool's default: 5 minutes), so a server back after a restart was not
            # tried again for many seconds. A short one gives up soon: the next request that
            # finds no connection starts a new attempt at once.
            reconnect_timeout=max(1.0, self._pool_timeout),
            open=False,
            name="combinedreg",
        )
        pool.open(wait=False)
        return pool

    def _configure(self, conn: Conn) -> None:
        # A stuck statement (a lock held by a hung client) fails closed instead of hanging.
        conn.execute(f"SET statement_timeout = {int(self._statement_ms)}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {int(self._statement_ms) * 4}")

    def _current_pool(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable(f"{self!r} is closed")
            if os.getpid() != self._pid:
                _INHERITED.append(self._pool)
                self._pool, self._pid = self._new_pool(), os.getpid()
            return self._pool

    def _prepare(self, apply: bool) -> None:
        """``apply``: migrate; else refuse a schema not at this package's version."""
        with self._connection() as conn:
            if apply:
                migrate(conn, self._name, self._clock.now())
                return
            version, target = schema_version(conn), len(MIGRATIONS)
        if version != target:
            raise StoreUnavailable(
                f"{self._name}: the schema is at version {version}, this oidc_combinedreg needs "
                f"{target}: run `combinedreg migrate`"
                if version < target
                else f"{self._name}: schema version {version} is newer than this "
                f"oidc_combinedreg knows ({target})"
            )

    def migrate(self) -> int:
        """Apply the missing migrations (``combinedreg migrate``); returns how many."""
        with self._connection() as conn:
            return migrate(conn, self._name, self._clock.now())

    def schema_version(self) -> int:
        with self._connection() as conn:
            return schema_version(conn)

    @contextmanager
    def _connection(self, *, begin: bool = True) -> Iterator[Conn]:
        """A pooled connection (or this thread's open transaction's); any database error
        becomes ``StoreUnavailable``, after the pool discarded a broken connection.

        ``begin=False``: for one statement that is atomic on its own, a pooled (autocommit)
        connection even inside a block whose transaction has not begun yet: no ``BEGIN`` and
        ``COMMIT`` round trips for it; the block's next call begins the transaction.

        Any statement drops what this request kept of a session's load (postgres_reads.py):
        a change, or a read of something else, may follow a change the kept reads predate."""
        request_reads.drop(self)
        local = self._local
        active: Conn | None = getattr(local, "conn", None)
        if active is None and begin and getattr(local, "pending", False):
            active = self._begin()
        if active is not None:
            try:
                yield active
            except psycopg.Error as exc:
                raise self._unavailable(exc) from exc
            return
        pool = self._current_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        """Several statements as one transaction; inside :meth:`transaction`, part of it.

        No savepoint there (two round trips): every call refuses (``LimitReached``,
        ``MethodsChanged``, False) before its first write, so a refusal leaves nothing of its
        own to undo, and a database error ends the whole block with ``StoreUnavailable`` (rolled
        back). A taken id or lookup value is an ``ON CONFLICT DO NOTHING``, not an error."""
        with self._connection() as conn:
            if getattr(self._local, "conn", None) is conn:
                yield conn
                return
            with conn.transaction():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``DeferredTransaction.transaction``, holding the block's planned session save
        (``plan_session_save``) until it ends."""
        opened = self._plans.open()
        try:
            with DeferredTransaction.transaction(self):
                yield
        finally:
            if opened:
                self._plans.close()

    def serialized(self) -> bool:
        # READ COMMITTED: other writers run between the block's statements (as on Redis).
        return False

    def _begin(self) -> Conn:
        pool = self._current_pool()
        try:
            conn: Conn = pool.getconn()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            conn.execute("BEGIN")
        except psycopg.Error as exc:
            pool.putconn(conn)
            raise self._unavailable(exc) from exc
        self._local.conn = conn
        return conn

    def _finish(self, *, commit: bool) -> None:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            return  # the block made no store call
        self._local.conn = None
        try:
            conn.execute("COMMIT" if commit else "ROLLBACK")
        except psycopg.Error as exc:
            if commit:
                raise self._unavailable(exc) from exc
        finally:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass  # broken: the pool discards it
            self._current_pool().putconn(conn)

    def _unavailable(self, exc: psycopg.Error) -> StoreUnavailable:
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, _CONNECTION_KEPT):
            # The server restarted or cut connections: the idle ones are likely dead too. Drop
            # them now, so the next request gets a working connection (or fails fast).
            try:
                self._pool.check()
            except Exception:  # housekeeping only; the next check catches up
                log.debug("pool check after a lost connection failed", exc_info=True)
        return StoreUnavailable(f"{self._name}: {type(exc).__name__}: {exc}")

    def _written(self) -> None:
        """After writes of ephemeral rows: purge expired rows now and then."""
        if next(self._writes) % _PURGE_EVERY == 0:
            try:
                self.purge_expired()
            except StoreUnavailable:
                pass  # housekeeping only; the next purge will catch up

    def purge_expired(self) -> int:
        """Delete expired sessions, challenges and windowed counters; returns how many rows."""
        now = self._clock.now()
        deleted = 0
        with self._connection() as conn:
            for table in ("sessions", "challenges", "counters"):
                deleted += conn.execute(
                    f"DELETE FROM {table} WHERE expires_at <= %s", (now,)
                ).rowcount
        return deleted

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool if os.getpid() == self._pid else None
        if pool is not None:
            pool.close()

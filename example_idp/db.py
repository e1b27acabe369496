"""Plain sqlite3 storage in the instance folder: clients, authorization codes, tokens, pushed
authorization requests, login throttle.

Connections are kept, in a small pool (as the middleware's SQLite store does): opening one costs
about seventy times a small query, and an authorization request makes a dozen queries. A pool and
not one connection per thread, because a threaded server may start a thread per request (the
development server does). A connection serves one operation at a time, and one made before a
``fork`` (gunicorn's workers, ``--preload``) is never used in the child, which opens its own:
SQLite forbids carrying a connection across ``fork``. WAL mode (readers never wait for the
writer) is a property of the database file: set once, with the schema, not per connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Database"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,                 -- sha256 of the secret; NULL for public clients
    metadata TEXT NOT NULL,           -- JSON client metadata (RFC 7591 names)
    issued_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,       -- sha256 of the code: a leaked database holds no usable code
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    auth_time INTEGER NOT NULL,
    amr TEXT NOT NULL,                -- JSON list (RFC 8176 values)
    acr TEXT,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0   -- kept after use, so a replay is recognised and answered
);
CREATE INDEX IF NOT EXISTS codes_nonce ON codes (client_id, nonce);
CREATE INDEX IF NOT EXISTS codes_expiry ON codes (expires_at);  -- the day-old purge
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_in INTEGER NOT NULL,
    code_hash TEXT,                   -- the code it was issued for (revoked on code replay)
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_code ON tokens (code_hash);
CREATE INDEX IF NOT EXISTS tokens_expiry ON tokens (issued_at + expires_in);  -- the purge
CREATE TABLE IF NOT EXISTS pushed_requests (
    uri_hash TEXT PRIMARY KEY,        -- sha256 of the request_uri (RFC 9126): none usable if leaked
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,             -- JSON: the request's parameters (a request object's claims)
    expires_at INTEGER NOT NULL,      -- to be first used by then
    started_at INTEGER,               -- first seen at /authorize: the login and MFA time from here
    used INTEGER NOT NULL DEFAULT 0,  -- spent when /authorize answered the client
    quota_key TEXT NOT NULL DEFAULT '' -- whose pending cap it counts on (par_limits.py)
);
-- each push's purge of the spent and expired (a multi-index OR); the count by quota_key: below
CREATE INDEX IF NOT EXISTS pushed_requests_used ON pushed_requests (used);
CREATE INDEX IF NOT EXISTS pushed_requests_ends ON pushed_requests (started_at, expires_at);
DROP TABLE IF EXISTS par_counts;     -- an older build's /par counters: now in rate_counts
CREATE TABLE IF NOT EXISTS rate_counts (
    key TEXT NOT NULL,                -- "<use>:<what>", e.g. "par:ip:<address>" (rate_limits.py)
    at REAL NOT NULL,
    until REAL NOT NULL               -- at + the counter's window: purged from then
);
CREATE INDEX IF NOT EXISTS rate_counts_key ON rate_counts (key, at);
CREATE INDEX IF NOT EXISTS rate_counts_until ON rate_counts (until);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,                -- "user:<name>" or "ip:<address>"
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
CREATE INDEX IF NOT EXISTS login_failures_at ON login_failures (at);  -- each failure's purge
CREATE TABLE IF NOT EXISTS user_overrides (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,               -- set by self-service password reset
    per_user_mfa TEXT
);
CREATE TABLE IF NOT EXISTS session_cutoffs (
    user_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL               -- host sessions signed in at or before this are dead
);
"""


#: connections a forked child inherited: kept referenced, never used or closed there (closing
#: one in the child could release locks the parent's copy holds).
_INHERITED: list[sqlite3.Connection] = []
#: idle connections kept per process; more are opened under load and closed when given back
MAX_IDLE = 8
#: bumped in every forked child: a pool compares it to know a child, where asking os.getpid()
#: (a system call) at each borrow and return cost two per query
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


def _add_column(conn: sqlite3.Connection, table: str, column: str) -> None:
    """A column SCHEMA added to an existing table (a file made by an older build)."""
    name = column.split()[0]
    if name not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        try:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.OperationalError as exc:  # another worker, starting at once, added it
            if "duplicate column" not in str(exc):
                raise


class Database:
    """A sqlite file; each operation borrows a kept connection and gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        #: the process the idle connections belong to (_forks)
        self._generation = _forks[0]
        with closing(self._open()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the database file
            conn.executescript(SCHEMA)  # idempotent; executescript manages its own transaction
            _add_column(conn, "pushed_requests", "quota_key TEXT NOT NULL DEFAULT ''")
            # After the column (an older file has none): each push counts its quota's pending ones.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS pushed_requests_quota ON pushed_requests (quota_key)"
            )

    def _open(self) -> sqlite3.Connection:
        # check_same_thread off: a pooled connection moves between threads, one at a time.
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        # Per connection (not stored in the file). In WAL mode NORMAL syncs at checkpoints, not
        # at every commit: a crash of the process loses nothing committed, a power loss may undo
        # the last commits (a code or token not yet used: the user signs in again). The
        # middleware's SQLite store makes the same choice (docs/storage.md, "Durability").
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    # Borrowed and given back by hand (try/finally), not through a @contextmanager generator:
    # its set-up and teardown cost about as much as a small query's own Python.
    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if _forks[0] != self._generation:  # a forked child: the parent's are not ours to use
                _INHERITED.extend(self._idle)
                self._idle, self._generation = [], _forks[0]
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _give(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            keep = _forks[0] == self._generation and len(self._idle) < MAX_IDLE
            if keep and not conn.in_transaction:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections (those in use close when given back, past the limit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so check-then-write is atomic."""
        conn = self._take()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            self._give(conn)  # closed instead when a failed COMMIT left it in the transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement as a transaction of its own; the number of rows it changed.

        In autocommit (no ``BEGIN``): SQLite runs a lone statement as its own transaction,
        taking the write lock as the statement starts (retried through the busy timeout, as
        ``BEGIN IMMEDIATE`` is) and undoing all of it if it fails, so an ``INSERT ... SELECT``
        that checks a count is as atomic as in an explicit transaction. ``BEGIN IMMEDIATE`` and
        ``COMMIT`` around it were two more statements for nothing (decision 201)."""
        conn = self._take()
        try:
            count: int = conn.execute(sql, params).rowcount
            return count
        finally:
            self._give(conn)

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        conn = self._take()
        try:
            row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
            return row
        finally:
            self._give(conn)

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._take()
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            self._give(conn)

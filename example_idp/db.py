"""Plain sqlite3 storage in the instance folder: clients, authorization codes, tokens, pushed
authorization requests, login throttle.

One short-lived connection per operation: the server is threaded (and gunicorn may run several
workers), and sqlite in WAL mode handles that without a pool.
"""

from __future__ import annotations

import sqlite3
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
CREATE TABLE IF NOT EXISTS pushed_requests (
    uri_hash TEXT PRIMARY KEY,        -- sha256 of the request_uri (RFC 9126): none usable if leaked
    client_id TEXT NOT NULL,
    params TEXT NOT NULL,             -- JSON: the request's parameters (a request object's claims)
    expires_at INTEGER NOT NULL,      -- to be first used by then
    started_at INTEGER,               -- first seen at /authorize: the login and MFA time from here
    used INTEGER NOT NULL DEFAULT 0   -- spent when /authorize answered the client
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,                -- "user:<name>" or "ip:<address>"
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
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


class Database:
    """A sqlite file; every method opens, uses and closes its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._connect()) as conn:
            conn.executescript(SCHEMA)  # idempotent; executescript manages its own transaction

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so check-then-write is atomic."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement; the number of rows it changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with closing(self._connect()) as conn:
            row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
            return row

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with closing(self._connect()) as conn:
            return list(conn.execute(sql, params).fetchall())

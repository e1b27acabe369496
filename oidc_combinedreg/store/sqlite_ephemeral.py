"""The SQLite store's short-lived rows: sessions, single-use challenges, throttle counters.

Rows carry ``expires_at`` and are invisible once the store's clock passes it; writes here count
towards the periodic purge of expired rows (``SqliteConnection._written``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from oidc_combinedreg.store.json_documents import dumps, loads
from oidc_combinedreg.store.sqlite_connection import SqliteConnection

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
# A new session that replaces none: its random id is in no row, so the two UPDATEs could not
# match; one statement instead of three, same outcome (a row of the same id and secret, which only
# a caller reusing an id can have, is updated; another secret's row is left alone).
_CREATE_SESSION = """
    INSERT INTO sessions (sid, secret, user_id, data, expires_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (sid) DO UPDATE SET
        user_id = excluded.user_id, data = excluded.data, expires_at = excluded.expires_at
    WHERE sessions.secret = excluded.secret"""
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
def _get_counts(count: int) -> str:
    """The live values of ``count`` counters (then ``now``) in one statement (the throttle's
    read at every code check: its text made once per count)."""
    return _GET_COUNTS.format(marks=", ".join("?" * count))


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


def delete_counters(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
    if keys:
        marks = ", ".join("?" * len(keys))
        conn.execute(f"DELETE FROM counters WHERE key IN ({marks})", list(keys))


def split_sid(sid: str) -> tuple[str, str]:
    """A session id's key and secret: ``<key>.<secret>`` (``SessionManager`` keeps the key for
    the session's life and draws a new secret at each rotation); an id without a dot is all key.
    """
    key, dot, secret = sid.rpartition(".")
    return (key, secret) if dot else (sid, "")


class SqliteEphemeral(SqliteConnection):
    """Sessions, challenges and counters of :class:`~oidc_combinedreg.store.sqlite.SqliteStore`."""

    # -- sessions -----------------------------------------------------------------------------

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
        text = dumps(data)
        key, secret = split_sid(sid)
        old_key, old_secret = split_sid(replaces or sid)
        slack = min(_EXPIRY_SLACK, ttl / 100)
        params = (key, secret, user_id, text, expires_at)
        # Saving a loaded session needs it live; a new one may take over an expired row.
        live_after = now if not create else float("-inf")
        quick = (secret, text, key, old_secret, user_id, expires_at - slack, expires_at)
        with self._writing() as conn:
            if create and replaces is None:
                conn.execute(_CREATE_SESSION, params)
                updated = True
            else:
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
            conn.execute("DELETE FROM sessions WHERE sid = ? AND secret = ?", split_sid(sid))

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
        params = (key, dumps(data), self._clock.now() + ttl)
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
        return loads(rows[0]["data"])

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT data FROM challenges WHERE key = ? AND expires_at > ?",
                (key, self._clock.now()),
            ).fetchone()
        return None if row is None else loads(row["data"])

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
                rows = conn.execute(_get_counts(len(read)), [*read, now]).fetchall()
            found = {row["key"]: int(row["value"]) for row in rows}
            return [found.get(key, 0) for key in read]
        values = []
        # Writes in one transaction: one commit (and one lock acquisition) for the whole call.
        with self._transaction() if incr or reset else self._connection() as conn:
            delete_counters(conn, reset)
            values += [self._incr_in(conn, key, ttl, now) for key, ttl in incr]
            values += [self._count(conn, key, now) for key in read]
        if incr:
            self._written()
        return values

    @staticmethod
    def _count(conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute(_GET_COUNT, (key, now)).fetchone()
        return 0 if row is None else int(row["value"])

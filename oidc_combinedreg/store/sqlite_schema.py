"""The SQLite store's schema: numbered migrations, and bringing a file up to the newest.

A file records the migrations applied to it in ``schema_version``; opening it applies the missing
ones in one write transaction (``BEGIN IMMEDIATE``), so workers opening a fresh file together
migrate it once. A file newer than this package is refused, never downgraded.
"""

from __future__ import annotations

import sqlite3

from oidc_combinedreg.exceptions import StoreUnavailable

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

_AUDIT_COLUMNS_V1 = "at, event, user_id, outcome, ip, correlation_id, detail"
#: Numbered schema migrations; migration N is ``MIGRATIONS[N - 1]``. Append only, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE methods (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            label TEXT NOT NULL,
            created_at REAL NOT NULL,
            data TEXT NOT NULL,
            secret BLOB NOT NULL,
            counter INTEGER NOT NULL DEFAULT 0,
            last_used_at REAL,
            lookup TEXT UNIQUE
        )""",
        "CREATE INDEX methods_by_user_kind ON methods (user_id, kind)",
        """CREATE TABLE user_state (
            user_id TEXT PRIMARY KEY,
            default_method_id TEXT,
            skips_used INTEGER NOT NULL DEFAULT 0,
            snoozed_until REAL,
            confirmed_at REAL,
            reregister INTEGER NOT NULL DEFAULT 0,
            extra TEXT NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE sessions (
            sid TEXT PRIMARY KEY,
            user_id TEXT,
            data TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
        "CREATE INDEX sessions_by_user ON sessions (user_id)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
        """CREATE TABLE challenges (
            key TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
        "CREATE INDEX challenges_by_expiry ON challenges (expires_at)",
        """CREATE TABLE counters (
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL,
            expires_at REAL
        )""",
        "CREATE INDEX counters_by_expiry ON counters (expires_at)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            user_id TEXT,
            outcome TEXT NOT NULL,
            ip TEXT,
            correlation_id TEXT,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_time ON audit (at)",
        "CREATE INDEX audit_by_user_time ON audit (user_id, at)",
    ),
    # Fewer pages written per commit (each costs a WAL frame): counters clustered by their key
    # (no separate key index), only windowed ones in the expiry index; audit ids without
    # AUTOINCREMENT (no sqlite_sequence write per event; ids still grow, since only the oldest
    # events are ever purged). An MFA verify wrote 21 pages before, 15 after (docs/storage.md).
    (
        """CREATE TABLE counters_v2 (
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL,
            expires_at REAL
        ) WITHOUT ROWID""",
        "INSERT INTO counters_v2 (key, value, expires_at) SELECT key, value, expires_at FROM counters",
        "DROP TABLE counters",
        "ALTER TABLE counters_v2 RENAME TO counters",
        "CREATE INDEX counters_by_expiry ON counters (expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE audit_v2 (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            user_id TEXT,
            outcome TEXT NOT NULL,
            ip TEXT,
            correlation_id TEXT,
            detail TEXT NOT NULL
        )""",
        f"INSERT INTO audit_v2 (id, {_AUDIT_COLUMNS_V1}) SELECT id, {_AUDIT_COLUMNS_V1} FROM audit",
        "DROP TABLE audit",
        "ALTER TABLE audit_v2 RENAME TO audit",
        "CREATE INDEX audit_by_time ON audit (at)",
        "CREATE INDEX audit_by_user_time ON audit (user_id, at)",
        "DELETE FROM sqlite_sequence WHERE name = 'audit'",
    ),
    # Sessions keyed by the part of the id that stays for the session's life (see
    # split_sid), clustered by it: a lookup reads one B-tree instead of an index and the table,
    # and a rotation (a new secret) updates its row in place, where a new key moved it in the
    # key index (two pages of a verify's commit, and the splits of random inserts).
    (
        """CREATE TABLE sessions_v3 (
            sid TEXT PRIMARY KEY,
            secret TEXT NOT NULL,
            user_id TEXT,
            data TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "INSERT INTO sessions_v3 (sid, secret, user_id, data, expires_at)"
        " SELECT sid, '', user_id, data, expires_at FROM sessions",
        "DROP TABLE sessions",
        "ALTER TABLE sessions_v3 RENAME TO sessions",
        "CREATE INDEX sessions_by_user ON sessions (user_id)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
    ),
    # "This wasn't me" suspends the reported methods (SECURITY.md case 59): set, the method is
    # out of use (every read of methods in use says ``reported_at IS NULL``) until deleted or
    # restored. NULL for every existing row: nothing was reported before.
    ("ALTER TABLE methods ADD COLUMN reported_at REAL",),
    # A user's methods in the order every listing gives them (created_at, then rowid, which an
    # index holds after its columns): a session's load inside a request (sqlite_reads.py) and
    # list_methods read them in that order instead of sorting them in a temporary B-tree.
    ("CREATE INDEX methods_by_user_created ON methods (user_id, created_at)",),
)


def schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str, now: float) -> None:
    """Bring the file to ``len(MIGRATIONS)``; concurrent openers serialize on the write lock."""
    target = len(MIGRATIONS)
    version = schema_version(conn)
    if version > target:
        raise StoreUnavailable(
            f"{path}: schema version {version} is newer than this oidc_combinedreg knows ({target})"
        )
    if version == target:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, at REAL)")
    for number in range(schema_version(conn) + 1, target + 1):
        for statement in MIGRATIONS[number - 1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version, at) VALUES (?, ?)", (number, now))
    conn.execute("COMMIT")

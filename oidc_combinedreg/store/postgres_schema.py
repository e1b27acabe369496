"""The PostgreSQL store's schema: numbered migrations, and bringing a database up to the newest.

A database records the migrations applied to it in ``combinedreg_schema``; :func:`migrate` applies
the missing ones in one transaction (PostgreSQL's DDL is transactional: a failed migration leaves
nothing behind) under a transaction-scoped advisory lock, so two hosts migrating together apply each
migration once: the second waits for the first to commit, then finds nothing left to do. A database
newer than this package is refused, never downgraded.

Times are the injected clock's seconds (``double precision``), as in the SQLite store, so every
store expires by the same clock; JSON is kept as ``text`` (what ``json_documents.dumps`` wrote,
escapes and all): ``jsonb`` refuses ``\\u0000``, which a session or an audit detail may hold.
"""

from __future__ import annotations

import psycopg

from oidc_combinedreg.exceptions import StoreUnavailable

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "migrate", "schema_version"]

#: the advisory lock key of migrations (an arbitrary constant: "creg" "mig" in ASCII)
MIGRATION_LOCK = 0x6372_6567_6D69_67

#: Numbered schema migrations; migration N is ``MIGRATIONS[N - 1]``. Append only, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # ``seq`` orders a user's methods as they were added (created_at may tie)
        """CREATE TABLE methods (
            id text PRIMARY KEY,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            user_id text NOT NULL,
            kind text NOT NULL,
            label text NOT NULL,
            created_at double precision NOT NULL,
            data text NOT NULL,
            secret bytea NOT NULL,
            counter bigint NOT NULL DEFAULT 0,
            last_used_at double precision,
            lookup text CONSTRAINT methods_lookup_key UNIQUE,
            reported_at double precision
        )""",
        "CREATE INDEX methods_by_user_kind ON methods (user_id, kind)",
        """CREATE TABLE user_state (
            user_id text PRIMARY KEY,
            default_method_id text,
            skips_used integer NOT NULL DEFAULT 0,
            snoozed_until double precision,
            confirmed_at double precision,
            reregister boolean NOT NULL DEFAULT false,
            extra text NOT NULL DEFAULT '{}'
        )""",
        # keyed by the part of the session id that stays for the session's life (as in SQLite)
        """CREATE TABLE sessions (
            sid text PRIMARY KEY,
            secret text NOT NULL,
            user_id text,
            data text NOT NULL,
            expires_at double precision NOT NULL
        )""",
        "CREATE INDEX sessions_by_user ON sessions (user_id)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
        """CREATE TABLE challenges (
            key text PRIMARY KEY,
            data text NOT NULL,
            expires_at double precision NOT NULL
        )""",
        "CREATE INDEX challenges_by_expiry ON challenges (expires_at)",
        """CREATE TABLE counters (
            key text PRIMARY KEY,
            value bigint NOT NULL,
            expires_at double precision
        )""",
        "CREATE INDEX counters_by_expiry ON counters (expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE audit (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at double precision NOT NULL,
            event text NOT NULL,
            user_id text,
            outcome text NOT NULL,
            ip text,
            correlation_id text,
            detail text NOT NULL
        )""",
        "CREATE INDEX audit_by_time ON audit (at)",
        "CREATE INDEX audit_by_user_time ON audit (user_id, at)",
    ),
)


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The newest migration applied (0: a database this package never touched)."""
    row = conn.execute("SELECT to_regclass('combinedreg_schema') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM combinedreg_schema").fetchone()
    return int(row[0]) if row is not None else 0  # type: ignore[call-overload]


def migrate(conn: psycopg.Connection[tuple[object, ...]], name: str, now: float) -> int:
    """Bring the database to ``len(MIGRATIONS)``; returns how many migrations this call applied.

    ``conn`` is in autocommit mode; the migrations run in one transaction of their own."""
    target = len(MIGRATIONS)
    applied = 0
    with conn.transaction():
        # Waits for another host's migration to commit; released at COMMIT or ROLLBACK.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS combinedreg_schema"
            " (version integer PRIMARY KEY, at double precision NOT NULL)"
        )
        version = schema_version(conn)
        if version > target:
            raise StoreUnavailable(
                f"{name}: schema version {version} is newer than this oidc_combinedreg "
                f"knows ({target})"
            )
        for number in range(version + 1, target + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO combinedreg_schema (version, at) VALUES (%s, %s)", (number, now)
            )
            applied += 1
    return applied

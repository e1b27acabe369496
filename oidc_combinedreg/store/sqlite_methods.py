"""The SQLite store's durable per-user rows: methods (in use and reported) and user state.

Every change runs in one ``BEGIN IMMEDIATE`` transaction with its audit rows: a change and its
events are written together or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from oidc_combinedreg.exceptions import InvalidInput, LimitReached, MethodsChanged
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import dumps
from oidc_combinedreg.store.sqlite_ephemeral import delete_counters
from oidc_combinedreg.store.sqlite_reads import SqliteReads
from oidc_combinedreg.store.sqlite_rows import (
    IN_USE,
    INSERT_METHOD,
    METHOD_COLUMNS,
    audit_params,
    insert_audit,
    lookup_taken,
    method_from_row,
    method_params,
)

_ADVANCE = (
    "UPDATE methods SET counter = ?, last_used_at = ?"
    f" WHERE id = ? AND user_id = ? AND counter < ? AND {IN_USE}"
)
_RECORD_USE = f"UPDATE methods SET last_used_at = ? WHERE id = ? AND user_id = ? AND {IN_USE}"


class SqliteMethods(SqliteReads):
    """Methods and user state of :class:`~oidc_combinedreg.store.sqlite.SqliteStore`. Built on the
    sessions and counters part: a report ends the user's sessions, a used code clears counters.
    Their reads are sqlite_reads.py's."""

    # -- methods ------------------------------------------------------------------------------

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        return self._list_methods(user_id, f"NOT {IN_USE}")

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
                        f"UPDATE methods SET reported_at = ? WHERE user_id = ? AND {IN_USE}"
                        f" AND id IN ({', '.join('?' * len(ids))})",
                        [at, state.user_id, *ids],
                    )
            live = self.delete_user_sessions(state.user_id)
            self.put_user_state(state, events=events)
        return live

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT kind FROM methods WHERE id = ? AND user_id = ? AND NOT {IN_USE}",
                (method_id, user_id),
            ).fetchone()
            if row is None:
                return False
            (count,) = conn.execute(
                f"SELECT count(*) FROM methods WHERE user_id = ? AND kind = ? AND {IN_USE}",
                (user_id, row["kind"]),
            ).fetchone()
            if count >= limit:
                raise LimitReached(str(row["kind"]), limit)
            conn.execute("UPDATE methods SET reported_at = NULL WHERE id = ?", (method_id,))
            insert_audit(conn, audit)
        return True

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {METHOD_COLUMNS} FROM methods WHERE lookup = ? AND {IN_USE}", (lookup,)
            ).fetchone()
        return None if row is None else method_from_row(row)

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        params = method_params(record)  # serialize before taking the lock
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            (count,) = conn.execute(
                f"SELECT count(*) FROM methods WHERE user_id = ? AND kind = ? AND {IN_USE}",
                (record.user_id, str(record.kind)),
            ).fetchone()
            if count >= limit:
                raise LimitReached(str(record.kind), limit)
            if record.lookup is not None and lookup_taken(conn, record.lookup):
                raise InvalidInput("lookup", "already registered")
            try:
                conn.execute(INSERT_METHOD, params)
            except sqlite3.IntegrityError:
                raise InvalidInput("id", "a method with this id exists") from None
            insert_audit(conn, audit)

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        data, audit = dumps(record.data), [audit_params(event) for event in events]
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE methods SET label = ?, data = ?, secret = ?"
                f" WHERE id = ? AND user_id = ? AND {IN_USE}",
                (record.label, data, record.secret, record.id, record.user_id),
            )
            if cur.rowcount == 0:
                return False
            insert_audit(conn, audit)
        return True

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            if if_methods is not None:
                rows = conn.execute(
                    f"SELECT id FROM methods WHERE user_id = ? AND {IN_USE}", (user_id,)
                )
                if {row["id"] for row in rows} != set(if_methods):
                    raise MethodsChanged(f"the methods of {user_id!r} changed")
            cur = conn.execute(
                "DELETE FROM methods WHERE id = ? AND user_id = ?", (method_id, user_id)
            )
            if cur.rowcount == 0:
                return False
            insert_audit(conn, audit)
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
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            if conn.execute(_ADVANCE, params).rowcount != 1:
                return False  # COMMIT of nothing: the transaction wrote no row
            insert_audit(conn, audit)
            delete_counters(conn, reset)
        return True

    def record_use(
        self,
        user_id: str,
        method_id: str,
        used_at: float,
        *,
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool:
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            if conn.execute(_RECORD_USE, (used_at, method_id, user_id)).rowcount != 1:
                return False
            insert_audit(conn, audit)
            delete_counters(conn, reset)
        return True

    # -- per-user state -----------------------------------------------------------------------

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None:
        params = (state.user_id, state.default_method_id, state.skips_used, state.snoozed_until,
                  state.confirmed_at, int(state.reregister), dumps(state.extra))  # fmt: skip
        audit = [audit_params(event) for event in events]
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO user_state (user_id, default_method_id, skips_used,"
                " snoozed_until, confirmed_at, reregister, extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            insert_audit(conn, audit)

    def list_user_ids(self) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT user_id FROM methods UNION SELECT user_id FROM user_state ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

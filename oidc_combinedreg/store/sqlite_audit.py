"""The SQLite store's audit log: one table, appended to, listed newest first."""

from __future__ import annotations

from typing import Any

from oidc_combinedreg.store.base import AuditEvent
from oidc_combinedreg.store.sqlite_connection import SqliteConnection
from oidc_combinedreg.store.sqlite_rows import (
    AUDIT_COLUMNS,
    audit_from_row,
    audit_params,
    insert_audit,
)


class SqliteAudit(SqliteConnection):
    """The audit log of :class:`~oidc_combinedreg.store.sqlite.SqliteStore`."""

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        params = audit_params(event)
        with self._writing() as conn:
            insert_audit(conn, [params])

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
                f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY at DESC, id DESC LIMIT ?",
                [*params, max(limit, 0)],
            ).fetchall()
        return [audit_from_row(row) for row in rows]

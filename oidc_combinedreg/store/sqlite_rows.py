"""How the SQLite store's rows are written and read: column lists, JSON, methods, audit events.

Shared by the store's parts (sqlite_methods.py, sqlite_ephemeral.py, sqlite_audit.py) so each
table has one encoding; the tables themselves are made by sqlite_schema.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import AuditEvent, MethodRecord
from oidc_combinedreg.store.json_documents import dumps, loads

METHOD_COLUMNS = (
    "id, user_id, kind, label, created_at, data, secret, counter, last_used_at, lookup, reported_at"
)
INSERT_METHOD = f"INSERT INTO methods ({METHOD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#: a method in use: not suspended by "This wasn't me" (store/base.py)
IN_USE = "reported_at IS NULL"
AUDIT_COLUMNS = "at, event, user_id, outcome, ip, correlation_id, detail"


def method_params(record: MethodRecord) -> tuple[Any, ...]:
    r = record
    return (r.id, r.user_id, str(r.kind), r.label, r.created_at, dumps(r.data), r.secret,
            r.counter, r.last_used_at, r.lookup, r.reported_at)  # fmt: skip


#: MethodKind by its stored value: a dict lookup, where ``MethodKind(value)`` is an enum call
_KINDS = {kind.value: kind for kind in MethodKind}


def method_from_row(row: sqlite3.Row | tuple[Any, ...]) -> MethodRecord:
    """A row of ``SELECT {METHOD_COLUMNS}``, unpacked by position (every MFA verify reads one:
    ``sqlite3.Row`` looks a name up by comparing it with each column's, case-insensitively)."""
    (method_id, user_id, kind, label, created_at, data, secret, counter, last_used_at, lookup,
     reported_at) = row  # fmt: skip
    return MethodRecord(
        id=method_id,
        user_id=user_id,
        kind=_KINDS.get(kind) or MethodKind(kind),  # an unknown value: the enum's ValueError
        label=label,
        created_at=created_at,
        data=loads(data),
        secret=bytes(secret),
        counter=counter,
        last_used_at=last_used_at,
        lookup=lookup,
        reported_at=reported_at,
    )


def audit_params(event: AuditEvent) -> tuple[Any, ...]:
    return (event.at, event.event, event.user_id, event.outcome, event.ip, event.correlation_id,
            dumps(event.detail))  # fmt: skip


def audit_from_row(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        at=row["at"],
        event=row["event"],
        user_id=row["user_id"],
        outcome=row["outcome"],
        ip=row["ip"],
        correlation_id=row["correlation_id"],
        detail=loads(row["detail"]),
    )


def insert_audit(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    conn.executemany(f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def lookup_taken(conn: sqlite3.Connection, lookup: str) -> bool:
    return conn.execute("SELECT 1 FROM methods WHERE lookup = ?", (lookup,)).fetchone() is not None

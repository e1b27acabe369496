"""The SQLite store's reads of a user's methods and state, and of a session: inside a request of
the middleware (store/request_reads.py) a session's load brings its user's methods in use and
state in the same statement, and that request's ``get_method``, ``list_methods`` and
``get_user_state`` of that user are answered from them until the store changes anything or
the request ends (decision 219, as decisions 216 and 218 on Redis and PostgreSQL). SQLite
has no round trips to save, but each statement is a read transaction of its own (its locks on
the WAL index, and after another process's commit its pages read again): the MFA verify runs
one statement fewer, a cleared /authorize two. Outside a request every read is its own
statement, as before."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.base import (
    STATE_COLUMNS,
    MethodRecord,
    UserState,
    qualified,
    state_from_row,
)
from oidc_combinedreg.store.json_documents import loads
from oidc_combinedreg.store.sqlite_ephemeral import SqliteEphemeral, split_sid
from oidc_combinedreg.store.sqlite_rows import IN_USE, METHOD_COLUMNS, method_from_row

__all__ = ["SqliteReads"]

_GET_USER_STATE = f"SELECT {STATE_COLUMNS} FROM user_state WHERE user_id = ?"
_LOAD_SESSION = "SELECT secret, data FROM sessions WHERE sid = ? AND expires_at > ?"
#: a user's methods (``condition``: in use or reported) in the order every listing gives them,
#: which the index ``methods_by_user_created`` holds them in (migration 5)
LIST_METHODS = (
    f"SELECT {METHOD_COLUMNS} FROM methods WHERE user_id = ? AND {{condition}}"
    " ORDER BY created_at, rowid"
)


#: the session (secret, data, user), then per method in use of its user one row of the methods'
#: columns (NULLs for none), then the user's state row (NULLs for none); the methods in the
#: order ``list_methods`` gives them
LOAD_SESSION_WITH_USER = f"""
SELECT s.secret, s.data, s.user_id, {qualified("m", METHOD_COLUMNS)}, {qualified("st", STATE_COLUMNS)}
FROM sessions s
LEFT JOIN methods m ON m.user_id = s.user_id AND m.{IN_USE}
LEFT JOIN user_state st ON st.user_id = s.user_id
WHERE s.sid = ? AND s.expires_at > ?
ORDER BY m.created_at, m.rowid
"""
_METHOD = slice(3, 3 + len(METHOD_COLUMNS.split(",")))
_STATE = slice(_METHOD.stop, _METHOD.stop + len(STATE_COLUMNS.split(",")))


@dataclass(frozen=True, slots=True)
class _KeptRows:
    """What a session's load inside a request brought along: its user's methods in use (rows of
    ``METHOD_COLUMNS``, in ``list_methods``'s order) and state row (None: no row), decoded
    only when asked (the MFA verify asks for one method, never for the state)."""

    methods: list[tuple[Any, ...]]
    state: tuple[Any, ...] | None


class SqliteReads(SqliteEphemeral):
    """Sessions' loads and the reads of a user's methods and state of
    :class:`~oidc_combinedreg.store.sqlite.SqliteStore`. Every change drops what a load kept
    (``_begin`` and ``_locked_write``, sqlite_connection.py), and a load inside a transaction
    keeps nothing (its changes would not pass there again)."""

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        kept = request_reads.kept_for(self, user_id, _KeptRows)
        if kept is not None:
            return [method_from_row(row) for row in kept.methods]
        return self._list_methods(user_id, IN_USE)

    def _list_methods(self, user_id: str, condition: str) -> list[MethodRecord]:
        with self._connection() as conn:
            rows = conn.execute(LIST_METHODS.format(condition=condition), (user_id,)).fetchall()
        return [method_from_row(row) for row in rows]

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        kept = request_reads.kept_for(self, user_id, _KeptRows)
        if kept is not None:
            for row in kept.methods:
                if row[0] == method_id:
                    return method_from_row(row)
            return None
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {METHOD_COLUMNS} FROM methods WHERE id = ? AND user_id = ? AND {IN_USE}",
                (method_id, user_id),
            ).fetchone()
        return None if row is None else method_from_row(row)

    def get_user_state(self, user_id: str) -> UserState:
        kept = request_reads.kept_for(self, user_id, _KeptRows)
        if kept is not None:
            row = kept.state
        else:
            with self._connection() as conn:
                row = conn.execute(_GET_USER_STATE, (user_id,)).fetchone()
        return UserState(user_id=user_id) if row is None else state_from_row(row)

    def load_session(self, sid: str) -> dict[str, Any] | None:
        key, secret = split_sid(sid)
        keeps = request_reads.kept() is not None and not self._in_transaction()
        with self._connection() as conn:
            params = (key, self._clock.now())
            if keeps:
                rows = conn.execute(LOAD_SESSION_WITH_USER, params).fetchall()
            else:
                row = conn.execute(_LOAD_SESSION, params).fetchone()
                rows = [] if row is None else [row]
        # Bytes: compare_digest refuses str with characters beyond ASCII, and a cookie may
        # hold anything.
        if not rows or not hmac.compare_digest(str(rows[0][0]).encode(), secret.encode()):
            return None
        first = rows[0]  # by position: sqlite3.Row compares names to find one
        if keeps and first[2] is not None:  # replaces what an earlier load kept
            methods = [row[_METHOD] for row in rows if row[3] is not None]
            state = first[_STATE] if first[_STATE.start] is not None else None
            request_reads.keep(self, first[2], _KeptRows(methods, state))
        return loads(first[1])

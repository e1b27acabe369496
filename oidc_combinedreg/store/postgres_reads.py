"""The PostgreSQL store's reads of a user's methods and state, and of a session: inside a request
of the middleware (store/request_reads.py) a session's load brings its user's methods in use and
state in the same statement, and that request's ``get_method``, ``list_methods`` and
``get_user_state`` of that user are answered from them until the store runs any other statement
or the request ends (decision 218, as decision 216 on Redis): the MFA verify is 2 round trips, a
cleared /authorize 1. Outside a request every read is its own statement, as before."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oidc_combinedreg.store import postgres_sql as q
from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.base import (
    STATE_COLUMNS,
    MethodRecord,
    UserState,
    qualified,
    state_from_row,
)
from oidc_combinedreg.store.json_documents import loads
from oidc_combinedreg.store.postgres_pool import PostgresConnections

__all__ = ["PostgresReads"]


#: the session (secret, data, user), then per method in use of its user one row of the methods'
#: columns (NULLs for none), then the user's state row (NULLs for none); the methods in the
#: order ``list_methods`` gives them
LOAD_SESSION_WITH_USER = f"""
SELECT s.secret, s.data, s.user_id, {qualified("m", q.METHOD_COLUMNS)}, {qualified("st", STATE_COLUMNS)}
FROM sessions s
LEFT JOIN LATERAL (
    SELECT {q.METHOD_COLUMNS}, seq FROM methods WHERE methods.user_id = s.user_id AND {q.IN_USE}
) m ON true
LEFT JOIN user_state st ON st.user_id = s.user_id
WHERE s.sid = %s AND s.expires_at > %s
ORDER BY m.created_at, m.seq
"""
_METHOD = slice(3, 3 + len(q.METHOD_COLUMNS.split(",")))
_STATE = slice(_METHOD.stop, _METHOD.stop + len(STATE_COLUMNS.split(",")))


@dataclass(frozen=True, slots=True)
class UserReads:
    """What a session's load inside a request brought along: its user's methods in use (in
    ``list_methods``'s order) and state."""

    methods: list[MethodRecord]
    state: UserState


class PostgresReads(PostgresConnections):
    """Sessions' loads and the reads of a user's methods and state of
    :class:`~oidc_combinedreg.store.postgres.PostgresStore`."""

    def _methods(self, where: str, params: Sequence[Any]) -> list[MethodRecord]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {q.METHOD_COLUMNS} FROM methods WHERE {where} ORDER BY created_at, seq",
                params,
            ).fetchall()
        return [q.method_from_row(row) for row in rows]

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        kept = self._kept_reads(user_id)
        if kept is not None:
            return list(kept.methods)
        return self._methods(f"user_id = %s AND {q.IN_USE}", (user_id,))

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        kept = self._kept_reads(user_id)
        if kept is not None:
            return next((m for m in kept.methods if m.id == method_id), None)
        found = self._methods(f"id = %s AND user_id = %s AND {q.IN_USE}", (method_id, user_id))
        return found[0] if found else None

    def get_user_state(self, user_id: str) -> UserState:
        kept = self._kept_reads(user_id)
        if kept is not None:
            return kept.state
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT {STATE_COLUMNS} FROM user_state WHERE user_id = %s", (user_id,)
            ).fetchone()
        return UserState(user_id=user_id) if row is None else state_from_row(row)

    def load_session(self, sid: str) -> dict[str, Any] | None:
        key, secret = q.split_sid(sid)
        keeps = request_reads.kept() is not None
        with self._connection() as conn:  # drops what this request kept (a new load)
            if not keeps:
                row = conn.execute(
                    "SELECT secret, data FROM sessions WHERE sid = %s AND expires_at > %s",
                    (key, self._clock.now()),
                ).fetchone()
                rows = [] if row is None else [row]
            else:
                rows = conn.execute(LOAD_SESSION_WITH_USER, (key, self._clock.now())).fetchall()
        if not rows or not hmac.compare_digest(str(rows[0][0]).encode(), secret.encode()):
            return None
        first = rows[0]
        if keeps and first[2] is not None:
            user_id = first[2]
            methods = [q.method_from_row(row[_METHOD]) for row in rows if row[3] is not None]
            state = state_from_row(first[_STATE]) if first[_STATE.start] is not None else None
            request_reads.keep(
                self, user_id, UserReads(methods, state or UserState(user_id=user_id))
            )
        return loads(first[1])

    def _kept_reads(self, user_id: str) -> UserReads | None:
        """``user_id``'s reads kept by this request's session load, if any."""
        return request_reads.kept_for(self, user_id, UserReads)

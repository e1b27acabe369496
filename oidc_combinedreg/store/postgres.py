"""The PostgreSQL backend: methods and audit where identity teams keep their data, shared by every host.

Choices, and why (docs/storage.md, decisions 120-124):

* **psycopg 3 with a psycopg_pool connection pool**, connections in autocommit mode: a call of
  one statement is one round trip; calls of several run in ``BEGIN`` ... ``COMMIT``.
* **READ COMMITTED plus a per-user advisory lock** (``pg_advisory_xact_lock``) around every change
  of a user's set of methods (add, restore, report, delete with ``if_methods``): "count, then
  insert" cannot interleave, so a per-kind limit holds under parallel adds, without SERIALIZABLE's
  retries. Single-row guarantees are single statements: ``DELETE ... RETURNING`` takes a challenge
  once, ``UPDATE ... WHERE counter < value`` is the compare-and-set, ``INSERT ... ON CONFLICT``
  counts atomically.
* **Every ``psycopg.Error`` becomes** :class:`~oidc_combinedreg.exceptions.StoreUnavailable`
  (the transaction rolled back: nothing half-written); after a lost connection the pool checks its
  idle connections, so the process recovers at the next request once the server is back.
* **Expiry by the injected clock**, as in the SQLite store; expired rows are deleted every few
  writes (:meth:`PostgresStore.purge_expired`).
* **After ``fork``** (gunicorn ``--preload``) the parent's pool is left alone, never closed (that
  would end the parent's connections on the server), and the child opens its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from oidc_combinedreg.exceptions import InvalidInput, LimitReached, MethodsChanged
from oidc_combinedreg.store import postgres_sql as q
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import dumps, loads
from oidc_combinedreg.store.postgres_pool import Conn
from oidc_combinedreg.store.postgres_reads import PostgresReads
from oidc_combinedreg.store.session_plan import SessionPlan

__all__ = ["PostgresStore"]


class PostgresStore(PostgresReads):
    """The :class:`~oidc_combinedreg.store.base.Store` on a PostgreSQL database.

    ``conninfo`` is a libpq connection string or URI (empty: the ``PG*`` environment variables).
    ``min_size``/``max_size`` bound the pool; ``pool_timeout`` is how long a call waits for a free
    connection, ``connect_timeout`` for a new one, ``statement_timeout`` for a statement (each
    past it: :class:`~oidc_combinedreg.exceptions.StoreUnavailable`). ``migrate``: bring the
    schema up to date at open (development); otherwise a database behind this package is refused
    (``combinedreg migrate`` applies the migrations).
    """

    # -- methods ------------------------------------------------------------------------------

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        return self._methods(f"user_id = %s AND NOT {q.IN_USE}", (user_id,))

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        found = self._methods(f"lookup = %s AND {q.IN_USE}", (lookup,))
        return found[0] if found else None

    @staticmethod
    def _lock_user(conn: Conn, user_id: str) -> None:
        conn.execute(q.LOCK_USER, q.user_lock_key(user_id))

    @staticmethod
    def _audit(conn: Conn, events: Sequence[AuditEvent]) -> None:
        # One multi-row INSERT: one statement and one round trip, as executemany's pipeline mode
        # would be, without entering and leaving pipeline mode (Flush, then Sync) on every call.
        if events:
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(events))
            params = [v for event in events for v in q.audit_params(event)]
            conn.execute(f"INSERT INTO audit ({q.AUDIT_COLUMNS}) VALUES {rows}", params)

    def report_methods(
        self,
        state: UserState,
        method_ids: Collection[str],
        *,
        at: float,
        events: Sequence[AuditEvent] = (),
    ) -> int:
        now = self._clock.now()
        with self._tx() as conn:
            self._lock_user(conn, state.user_id)
            if method_ids:
                conn.execute(
                    f"UPDATE methods SET reported_at = %s WHERE user_id = %s AND {q.IN_USE}"
                    " AND id = ANY(%s)",
                    (at, state.user_id, list(method_ids)),
                )
            ended = conn.execute(
                "DELETE FROM sessions WHERE user_id = %s RETURNING expires_at", (state.user_id,)
            ).fetchall()
            conn.execute(q.PUT_USER_STATE, q.state_params(state))
            self._audit(conn, events)
        return sum(1 for (expires_at,) in ended if expires_at > now)

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        with self._tx() as conn:
            self._lock_user(conn, user_id)
            row = conn.execute(
                f"SELECT kind FROM methods WHERE id = %s AND user_id = %s AND NOT {q.IN_USE}",
                (method_id, user_id),
            ).fetchone()
            if row is None:
                return False
            counted = conn.execute(q.COUNT_KIND, (user_id, row[0])).fetchone()
            if counted is not None and counted[0] >= limit:
                raise LimitReached(str(row[0]), limit)
            conn.execute("UPDATE methods SET reported_at = NULL WHERE id = %s", (method_id,))
            self._audit(conn, events)
        return True

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        params = q.method_params(record)
        with self._tx() as conn:
            # Under the user's lock, the count is of every add committed before this one.
            self._lock_user(conn, record.user_id)
            counted = conn.execute(q.COUNT_KIND, (record.user_id, str(record.kind))).fetchone()
            if counted is not None and counted[0] >= limit:
                raise LimitReached(str(record.kind), limit)
            # A taken id or lookup value inserts nothing (no error: the transaction goes on).
            if conn.execute(q.INSERT_METHOD, params).rowcount == 0:
                taken = conn.execute("SELECT 1 FROM methods WHERE id = %s", (record.id,))
                if taken.fetchone() is not None:
                    raise InvalidInput("id", "a method with this id exists")
                raise InvalidInput("lookup", "already registered")
            self._audit(conn, events)

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE methods SET label = %s, data = %s, secret = %s"
                f" WHERE id = %s AND user_id = %s AND {q.IN_USE}",
                (record.label, dumps(record.data), record.secret, record.id, record.user_id),
            )
            if cur.rowcount == 0:
                return False
            self._audit(conn, events)
        return True

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        with self._tx() as conn:
            if if_methods is not None:
                self._lock_user(conn, user_id)  # no add or delete of this user in between
                rows = conn.execute(
                    f"SELECT id FROM methods WHERE user_id = %s AND {q.IN_USE}", (user_id,)
                ).fetchall()
                if {row[0] for row in rows} != set(if_methods):
                    raise MethodsChanged(f"the methods of {user_id!r} changed")
            cur = conn.execute(
                "DELETE FROM methods WHERE id = %s AND user_id = %s", (method_id, user_id)
            )
            if cur.rowcount == 0:
                return False
            self._audit(conn, events)
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
        params = (value, used_at, method_id, user_id, value)
        if not events and not reset:
            with self._connection() as conn:
                return bool(conn.execute(q.ADVANCE, params).rowcount == 1)
        with self._tx() as conn:
            if conn.execute(q.ADVANCE, params).rowcount != 1:
                return False  # a replayed step: no counter, no success in the log
            self._audit(conn, events)
            if reset:
                conn.execute("DELETE FROM counters WHERE key = ANY(%s)", (list(reset),))
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
        with self._tx() as conn:
            if conn.execute(q.RECORD_USE, (used_at, method_id, user_id)).rowcount != 1:
                return False
            self._audit(conn, events)
            if reset:
                conn.execute("DELETE FROM counters WHERE key = ANY(%s)", (list(reset),))
        return True

    def checks_limits(self) -> bool:
        """:meth:`advance_counter_checked` is one statement here (``LimitCheckedAdvance``)."""
        return True

    def advance_counter_checked(
        self,
        user_id: str,
        method_id: str,
        value: int,
        used_at: float,
        *,
        checks: Sequence[tuple[str, int, str]],
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool | str:
        """:meth:`advance_counter` behind the code throttle's limits in one statement, atomic on
        its own, so it runs outside the block's transaction if none has begun (one round trip:
        no ``BEGIN``, no ``COMMIT``): the scope of the first of ``checks`` (counter key, limit,
        scope) whose value is at its limit, with nothing written; else as
        :meth:`advance_counter`. The counters are locked (``FOR UPDATE``) and read at their
        newest committed values, so a failure counted meanwhile is seen. A session save
        planned in the block (:meth:`plan_session_save`) is written by the same statement."""
        keys = [key for key, _, _ in checks]
        assert keys[: len(reset)] == list(reset), "reset must be the first keys of checks"
        plan = self._plans.pending(user_id)
        params: dict[str, Any] = {
            "checks": q.checks_json(checks, reset), "events": q.events_json(events),
            "now": self._clock.now(), "value": value, "used_at": used_at,
            "method_id": method_id, "user_id": user_id,
        }  # fmt: skip
        if plan is not None:
            params.update(self._session_params(plan.sid, plan.payload, user_id, plan.ttl,
                                               plan.replaces, plan.create))  # fmt: skip
        sql = q.ADVANCE_CHECKED_ALONE if plan is None else q.ADVANCE_CHECKED_SAVE
        with self._connection(begin=False) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None
        scope, advanced, updated = row
        if scope is not None:
            return str(scope)
        if advanced and plan is not None:
            plan.saved = plan.create or updated > 0
            self._written()
        return bool(advanced)

    def plan_session_save(
        self,
        sid: str,
        data: Mapping[str, Any],
        *,
        user_id: str,
        ttl: float,
        replaces: str | None = None,
        create: bool = True,
    ) -> None:
        """See ``LimitCheckedAdvance.plan_session_save``: written by
        :meth:`advance_counter_checked`."""
        self._plans.plan(SessionPlan(sid, dumps(data), user_id, ttl, replaces, create))

    # -- per-user state -----------------------------------------------------------------------

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None:
        with self._tx() if events else self._connection() as conn:
            conn.execute(q.PUT_USER_STATE, q.state_params(state))
            self._audit(conn, events)

    def list_user_ids(self) -> list[str]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT user_id FROM (SELECT user_id FROM methods UNION"
                ' SELECT user_id FROM user_state) AS u ORDER BY user_id COLLATE "C"'
            ).fetchall()
        return [row[0] for row in rows]

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
        payload = dumps(data)
        # A save planned ahead may have been written by the code check's statement already.
        answer, replaces, create = self._plans.settle(sid, payload, user_id, ttl, replaces, create)
        if answer is not None:
            return answer
        params = self._session_params(sid, payload, user_id, ttl, replaces, create)
        with self._connection() as conn:
            row = conn.execute(q.SAVE_SESSION, params).fetchone()
        self._written()
        return create or (row is not None and row[0] > 0)

    def _session_params(
        self, sid: str, payload: str, user_id: str | None, ttl: float, replaces: str | None,
        create: bool,
    ) -> dict[str, Any]:  # fmt: skip
        now = self._clock.now()
        key, secret = q.split_sid(sid)
        old_key, old_secret = q.split_sid(replaces or sid)
        return {"key": key, "secret": secret, "user_id": user_id, "data": payload,
                "expires_at": now + ttl, "old_key": old_key, "old_secret": old_secret,
                # saving a loaded session needs it live; a new one may take over an expired row
                "live_after": now if not create else float("-inf"), "create": create}  # fmt: skip

    def delete_session(self, sid: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM sessions WHERE sid = %s AND secret = %s", q.split_sid(sid))

    def delete_user_sessions(self, user_id: str) -> int:
        now = self._clock.now()
        with self._connection() as conn:
            rows = conn.execute(
                "DELETE FROM sessions WHERE user_id = %s RETURNING expires_at", (user_id,)
            ).fetchall()
        return sum(1 for (expires_at,) in rows if expires_at > now)

    # -- single-use challenges ----------------------------------------------------------------

    def put_challenge(self, key: str, data: Mapping[str, Any], *, ttl: float) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO challenges (key, data, expires_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (key) DO UPDATE SET data = excluded.data,"
                " expires_at = excluded.expires_at",
                (key, dumps(data), self._clock.now() + ttl),
            )
        self._written()

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:  # one statement: of two takers, one gets the row
            row = conn.execute(
                "DELETE FROM challenges WHERE key = %s RETURNING data, expires_at", (key,)
            ).fetchone()
        if row is None or row[1] <= self._clock.now():
            return None
        return loads(row[0])

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT data FROM challenges WHERE key = %s AND expires_at > %s",
                (key, self._clock.now()),
            ).fetchone()
        return None if row is None else loads(row[0])

    # -- counters -----------------------------------------------------------------------------

    def incr(self, key: str, *, ttl: float | None) -> int:
        return self.counters(incr=[(key, ttl)])[0]

    def get_count(self, key: str) -> int:
        return self.counters(read=[key])[0]

    def reset_count(self, key: str) -> None:
        self.counters(reset=[key])

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
        values: list[int] = []
        keys = [key for key, _ in incr]
        with self._connection() as conn:
            if reset:
                conn.execute("DELETE FROM counters WHERE key = ANY(%s)", (list(reset),))
            if incr and read and len(set(keys)) == len(keys):
                # The throttle's attempt: increments and reads in one statement (one round trip)
                return self._increment_and_read(conn, incr, read, now)
            if incr:
                values = self._increment(conn, incr, now)
            if read:
                rows = conn.execute(q.GET_COUNTS, (list(read), now)).fetchall()
                found = {row[0]: int(row[1]) for row in rows}
                values += [found.get(key, 0) for key in read]
        if incr:
            self._written()
        return values

    def _increment_and_read(
        self, conn: Conn, incr: Sequence[tuple[str, float | None]], read: Sequence[str], now: float
    ) -> list[int]:
        """Distinct increments and the reads in one statement. Its snapshot predates the
        increments, so a key both incremented and read is read from what the upsert returned."""
        expiry = {key: None if ttl is None else now + ttl for key, ttl in incr}
        keys = sorted(expiry)
        rows = ", ".join(["(%s, 1, %s::double precision)"] * len(keys))
        params = [v for key in keys for v in (key, expiry[key])]
        sql = q.INCR_AND_READ.format(incr=q.INCR.format(rows=rows))
        found: dict[tuple[str, bool], int] = {}
        for key, value, incremented in conn.execute(sql, [*params, now, now, list(read), now]):
            found[(key, incremented)] = int(value)
        values = [found[(key, True)] for key, _ in incr]
        values += [found.get((key, True), found.get((key, False), 0)) for key in read]
        self._written()
        return values

    @staticmethod
    def _increment(conn: Conn, incr: Sequence[tuple[str, float | None]], now: float) -> list[int]:
        """A statement per batch of distinct keys, rows in key order (two callers lock the same
        keys in the same order: no deadlock)."""
        batches, where = q.increment_batches(incr, now)
        results: list[dict[str, int]] = []
        for batch in batches:
            keys = sorted(batch)
            rows = ", ".join(["(%s, 1, %s::double precision)"] * len(keys))
            params = [v for key in keys for v in (key, batch[key])]
            done = conn.execute(q.INCR.format(rows=rows), [*params, now, now]).fetchall()
            results.append({row[0]: int(row[1]) for row in done})
        return [results[index][key] for index, (key, _) in zip(where, incr, strict=True)]

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        with self._connection() as conn:
            conn.execute(q.INSERT_AUDIT, q.audit_params(event))

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
            clauses.append("user_id = %s")
            params.append(user_id)
        if event_prefix is not None:
            clauses.append("starts_with(event, %s)")
            params.append(event_prefix)
        if since is not None:
            clauses.append("at >= %s")
            params.append(since)
        if until is not None:
            clauses.append("at < %s")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {q.AUDIT_COLUMNS} FROM audit {where} ORDER BY at DESC, id DESC LIMIT %s",
                [*params, max(limit, 0)],
            ).fetchall()
        return [q.audit_from_row(row) for row in rows]

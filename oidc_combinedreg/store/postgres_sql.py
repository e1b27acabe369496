"""The PostgreSQL store's statements and row conversions (store/postgres.py runs them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import dumps, loads

METHOD_COLUMNS = (
    "id, user_id, kind, label, created_at, data, secret, counter, last_used_at, lookup, reported_at"
)
INSERT_METHOD = (
    f"INSERT INTO methods ({METHOD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING"
)
#: a method in use: not suspended by "This wasn't me" (store/base.py)
IN_USE = "reported_at IS NULL"
AUDIT_COLUMNS = "at, event, user_id, outcome, ip, correlation_id, detail"
INSERT_AUDIT = f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
#: the compare-and-set: under READ COMMITTED a second UPDATE of the row waits for the first to
#: commit and re-checks ``counter < value`` on the new row, so of two equal values one wins
ADVANCE = (
    "UPDATE methods SET counter = %s, last_used_at = %s"
    f" WHERE id = %s AND user_id = %s AND counter < %s AND {IN_USE}"
)
#: a use without a counter (an approved push, a passkey, a reset's email code or questions)
RECORD_USE = f"UPDATE methods SET last_used_at = %s WHERE id = %s AND user_id = %s AND {IN_USE}"
#: one namespace (``creg`` in ASCII) of the two-key advisory locks: a user's method changes
USER_LOCK_SPACE = 0x63726567
LOCK_USER = "SELECT pg_advisory_xact_lock(%s, %s)"
COUNT_KIND = f"SELECT count(*) FROM methods WHERE user_id = %s AND kind = %s AND {IN_USE}"
PUT_USER_STATE = """
    INSERT INTO user_state (user_id, default_method_id, skips_used, snoozed_until,
        confirmed_at, reregister, extra)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (user_id) DO UPDATE SET
        default_method_id = excluded.default_method_id, skips_used = excluded.skips_used,
        snoozed_until = excluded.snoozed_until, confirmed_at = excluded.confirmed_at,
        reregister = excluded.reregister, extra = excluded.extra"""
# A session save in one statement (one round trip per request): the row it updates (``replaces``,
# else ``sid``) moves to the new key and secret while live (or, creating, even expired); else a
# new session is inserted, unless ``create`` is false (a session ended meanwhile stays ended). A
# row with the new key and another secret is the same session rotated by a parallel request since
# this one loaded it: the stale copy is dropped, never written over it (as in the SQLite store).
SAVE_SESSION = """
    WITH updated AS (
        UPDATE sessions SET sid = %(key)s, secret = %(secret)s, user_id = %(user_id)s,
            data = %(data)s, expires_at = %(expires_at)s
        WHERE sid = %(old_key)s AND secret = %(old_secret)s AND expires_at > %(live_after)s
        RETURNING 1
    ), inserted AS (
        INSERT INTO sessions (sid, secret, user_id, data, expires_at)
        SELECT %(key)s, %(secret)s, %(user_id)s, %(data)s, %(expires_at)s
        WHERE %(create)s AND NOT EXISTS (SELECT 1 FROM updated)
        ON CONFLICT (sid) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated)"""
# The MFA verify's write in one statement, atomic on its own (LimitCheckedAdvance): the code
# throttle's counters locked in the order of the checks (the order in which the throttle's own
# statements take them: no deadlock) and read at their newest committed values; at a limit
# nothing is written and the first such scope returned. Else the compare-and-set of ADVANCE, and
# only if it stored the step: the audit events, the account's counters (``reset``) cleared, and,
# with SESSION_PART, the planned session saved as SAVE_SESSION would. Each CTE is conditional on
# the one before, which also fixes the order of the locks taken. The checks and the events come
# as one JSON text each (``checks_json``, ``events_json``): psycopg spends about 15 us of CPU
# adapting each Python list to an array, a dozen of them per verify.
ADVANCE_CHECKED = """
    WITH checks AS (
        SELECT * FROM json_to_recordset(%(checks)s::json)
            AS c(n integer, key text, lim bigint, scope text, reset boolean)
    ), locked AS (
        SELECT t.key, t.value, t.expires_at FROM counters AS t JOIN checks AS c ON c.key = t.key
        ORDER BY c.n FOR UPDATE OF t
    ), refused AS (
        SELECT c.scope FROM checks AS c JOIN locked AS l ON l.key = c.key
        WHERE (l.expires_at IS NULL OR l.expires_at > %(now)s) AND l.value >= c.lim
        ORDER BY c.n LIMIT 1
    ), advanced AS (
        UPDATE methods SET counter = %(value)s, last_used_at = %(used_at)s
        WHERE id = %(method_id)s AND user_id = %(user_id)s AND counter < %(value)s
            AND reported_at IS NULL AND NOT EXISTS (SELECT 1 FROM refused)
        RETURNING 1
    ), audited AS (
        INSERT INTO audit (at, event, user_id, outcome, ip, correlation_id, detail)
        SELECT * FROM json_to_recordset(%(events)s::json) AS e(at double precision, event text,
            user_id text, outcome text, ip text, correlation_id text, detail text)
        WHERE EXISTS (SELECT 1 FROM advanced)
    ), cleared AS (
        DELETE FROM counters WHERE key IN (SELECT key FROM checks WHERE reset)
            AND EXISTS (SELECT 1 FROM advanced)
    ){session}
    SELECT (SELECT scope FROM refused), (SELECT count(*) FROM advanced), {saved}"""


def checks_json(checks: Sequence[tuple[str, int, str]], reset: Sequence[str]) -> str:
    """ADVANCE_CHECKED's checks: in order, each with its counter key, limit, refusal scope and
    whether a success clears it."""
    return json.dumps([{"n": n, "key": key, "lim": limit, "scope": scope, "reset": key in reset}
                       for n, (key, limit, scope) in enumerate(checks)])  # fmt: skip


def events_json(events: Sequence[AuditEvent]) -> str:
    """ADVANCE_CHECKED's audit rows (floats as ``repr`` writes them: read back exactly)."""
    names = AUDIT_COLUMNS.split(", ")
    return json.dumps([dict(zip(names, audit_params(event), strict=True)) for event in events])


#: ADVANCE_CHECKED's session save: SAVE_SESSION's, once the step is stored
SESSION_PART = """, updated AS (
        UPDATE sessions SET sid = %(key)s, secret = %(secret)s, user_id = %(user_id)s,
            data = %(data)s, expires_at = %(expires_at)s
        WHERE sid = %(old_key)s AND secret = %(old_secret)s AND expires_at > %(live_after)s
            AND EXISTS (SELECT 1 FROM advanced)
        RETURNING 1
    ), inserted AS (
        INSERT INTO sessions (sid, secret, user_id, data, expires_at)
        SELECT %(key)s, %(secret)s, %(user_id)s, %(data)s, %(expires_at)s
        WHERE %(create)s AND EXISTS (SELECT 1 FROM advanced) AND NOT EXISTS (SELECT 1 FROM updated)
        ON CONFLICT (sid) DO NOTHING
        RETURNING 1
    )"""
ADVANCE_CHECKED_ALONE = ADVANCE_CHECKED.format(session="", saved="0")
ADVANCE_CHECKED_SAVE = ADVANCE_CHECKED.format(
    session=SESSION_PART, saved="(SELECT count(*) FROM updated)"
)
INCR = """
    INSERT INTO counters AS c (key, value, expires_at) VALUES {rows}
    ON CONFLICT (key) DO UPDATE SET
        value = CASE WHEN c.expires_at <= %s THEN 1 ELSE c.value + 1 END,
        expires_at = CASE WHEN c.expires_at <= %s THEN excluded.expires_at ELSE c.expires_at END
    RETURNING key, value"""
#: increments (``INCR``) and reads in one statement: the reads of keys not incremented
INCR_AND_READ = """
    WITH incremented AS ({incr})
    SELECT key, value, true FROM incremented
    UNION ALL
    SELECT key, value, false FROM counters
    WHERE key = ANY(%s) AND (expires_at IS NULL OR expires_at > %s)
        AND key NOT IN (SELECT key FROM incremented)"""
GET_COUNTS = (
    "SELECT key, value FROM counters"
    " WHERE key = ANY(%s) AND (expires_at IS NULL OR expires_at > %s)"
)


def user_lock_key(user_id: str) -> tuple[int, int]:
    """The advisory lock of one user's methods: a 32-bit hash of the id in its own namespace.
    Two users sharing a hash only wait for each other's short transaction."""
    digest = hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return USER_LOCK_SPACE, int.from_bytes(digest, "big", signed=True)


def increment_batches(
    incr: Sequence[tuple[str, float | None]], now: float
) -> tuple[list[dict[str, float | None]], list[int]]:
    """The increments as batches of distinct keys (an upsert may touch a row once), each key's
    expiry, and for each increment the index of its batch."""
    batches: list[dict[str, float | None]] = [{}]
    where: list[int] = []
    for key, ttl in incr:
        if key in batches[-1]:
            batches.append({})
        batches[-1][key] = None if ttl is None else now + ttl
        where.append(len(batches) - 1)
    return batches, where


def method_params(r: MethodRecord) -> tuple[Any, ...]:
    return (r.id, r.user_id, str(r.kind), r.label, r.created_at, dumps(r.data), r.secret,
            r.counter, r.last_used_at, r.lookup, r.reported_at)  # fmt: skip


def method_from_row(row: Sequence[Any]) -> MethodRecord:
    (id_, user_id, kind, label, created_at, data, secret, counter, last_used_at, lookup,
     reported_at) = row  # fmt: skip
    return MethodRecord(
        id=id_,
        user_id=user_id,
        kind=MethodKind(kind),
        label=label,
        created_at=created_at,
        data=loads(data),
        secret=bytes(secret),
        counter=counter,
        last_used_at=last_used_at,
        lookup=lookup,
        reported_at=reported_at,
    )


def state_params(state: UserState) -> tuple[Any, ...]:
    return (state.user_id, state.default_method_id, state.skips_used, state.snoozed_until,
            state.confirmed_at, state.reregister, dumps(state.extra))  # fmt: skip


def audit_params(event: AuditEvent) -> tuple[Any, ...]:
    return (event.at, event.event, event.user_id, event.outcome, event.ip, event.correlation_id,
            dumps(event.detail))  # fmt: skip


def audit_from_row(row: Sequence[Any]) -> AuditEvent:
    at, name, user_id, outcome, ip, correlation_id, detail = row
    return AuditEvent(
        at=at,
        event=name,
        user_id=user_id,
        outcome=outcome,
        ip=ip,
        correlation_id=correlation_id,
        detail=loads(detail),
    )


def split_sid(sid: str) -> tuple[str, str]:
    """A session id's key and secret (``<key>.<secret>``, as in the SQLite store)."""
    key, dot, secret = sid.rpartition(".")
    return (key, secret) if dot else (sid, "")

"""The Redis store's durable per-user data: methods, reported methods, lookups, user state.

A user's methods are one hash and each change of them is one Lua script in the user's slot that
also writes the change's audit events (store/redis.py's docstring: "One user, one hash tag",
"A user's methods are one hash", "Lookup values are claimed first").
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import cast

from oidc_combinedreg.crypto import random_id
from oidc_combinedreg.exceptions import (
    InvalidInput,
    LimitReached,
    MethodsChanged,
    StoreUnavailable,
)
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import loads
from oidc_combinedreg.store.redis_audit import Advanced, Block, RedisAudit
from oidc_combinedreg.store.redis_ephemeral import RedisEphemeral
from oidc_combinedreg.store.redis_layout import (
    METHODS_PART,
    STATE_PART,
    event_json,
    hash_replies,
    hmget_replies,
    method_body,
    method_from_value,
    method_value,
    state_json,
)

_log = logging.getLogger("oidc_combinedreg.store")

#: times a report reads the user's session index again when a session came or went meanwhile
_REPORT_TRIES = 5


class RedisMethods(RedisEphemeral, RedisAudit):
    """Methods and user state of :class:`~oidc_combinedreg.store.redis.RedisStore`. Built on the
    sessions and counters part: a report ends the user's sessions, a used code clears counters."""

    # -- methods ------------------------------------------------------------------------------

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        kept = self._kept_reads(user_id)
        if kept is not None:
            values = kept.methods
        else:
            key = self._keys.methods(user_id)
            values = hash_replies(self._read_command(key, "HGETALL", key))
        found = [
            method_from_value(user_id, method_id.decode(), raw) for method_id, raw in values.items()
        ]
        found.sort(key=lambda pair: (pair[0].created_at, pair[1]))
        return [record for record, _ in found]

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        # The key holds the user id, so another user's method id is simply not there (no IDOR).
        kept = self._kept_reads(user_id)
        if kept is not None:
            # surrogatepass: an id no field can have (a lone surrogate from JSON) finds nothing
            raw = kept.methods.get(method_id.encode("utf-8", "surrogatepass"))
        else:
            key = self._keys.methods(user_id)
            raw = cast("bytes | None", self._read_command(key, "HGET", key, method_id))
        return None if raw is None else method_from_value(user_id, method_id, raw)[0]

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        key = self._keys.lookup(lookup)
        owner, method_id = hmget_replies(self._read_command(key, "HMGET", key, "u", "m"))
        if owner is None or method_id is None:
            return None
        found = self.get_method(owner.decode(), method_id.decode())
        return found if found is not None and found.lookup == lookup else None

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        key = self._keys.reported(user_id)
        values = hash_replies(self._read_command(key, "HGETALL", key))
        found = []
        for method_id, raw in values.items():
            at, _, value = raw.partition(b"|")
            record, seq = method_from_value(user_id, method_id.decode(), value)
            found.append((replace(record, reported_at=float(at)), seq))
        found.sort(key=lambda pair: (pair[0].created_at, pair[1]))
        return [record for record, _ in found]

    def report_methods(
        self,
        state: UserState,
        method_ids: Collection[str],
        *,
        at: float,
        events: Sequence[AuditEvent] = (),
    ) -> int:
        user_id, ids = state.user_id, list(method_ids)
        index = self._keys.user(user_id, "sessions")
        keys = [self._keys.methods(user_id), self._keys.reported(user_id),
                self._keys.user(user_id, STATE_PART), index]  # fmt: skip
        prefix = self._keys.session("")
        args = [user_id, state_json(state), repr(float(at))]
        for _ in range(_REPORT_TRIES):
            now = repr(self._clock.now())
            if self._cluster:
                # The sessions are in other slots: ended right after the user's script.
                self._change("REPORT_METHODS", user_id, keys,
                             [*args, now, "0", prefix, str(len(ids)), *ids], events)  # fmt: skip
                return self.delete_user_sessions(user_id)
            with self._guard():
                sids = cast("list[bytes]", self._client.zrange(index, 0, -1))
            sessions = [self._keys.session(sid.decode()) for sid in sids]
            (live, *_) = self._change(
                "REPORT_METHODS", user_id, keys, [*args, now, "1", prefix, str(len(ids)), *ids],
                events, extra_keys=sessions,
            )  # fmt: skip
            if int(live) >= 0:
                return int(live)
        raise StoreUnavailable(f"the sessions of {user_id!r} kept changing during a report")

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        keys = [self._keys.methods(user_id), self._keys.reported(user_id)]
        outcome = self._change("RESTORE_METHOD", user_id, keys, [method_id, str(limit)], events)
        if outcome == b"limit":
            with self._guard():
                raw = cast("bytes | None", self._client.hget(keys[1], method_id))
            kind = raw.partition(b"|")[2].partition(b"|")[0].decode() if raw else "method"
            raise LimitReached(kind, limit)
        return bool(outcome == 1)

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        value = method_value(record)
        if record.lookup is not None:
            self._claim_lookup(record)
        outcome = self._change(
            "ADD_METHOD",
            record.user_id,
            [self._keys.methods(record.user_id)],
            [record.id, str(record.kind), str(limit), value],
            events,
        )
        if outcome != b"ok":
            if record.lookup is not None:
                self._release_lookup(record.lookup, record.user_id, record.id)
            if outcome == b"limit":
                raise LimitReached(str(record.kind), limit)
            raise InvalidInput("id", "a method with this id exists")

    def _claim_lookup(self, record: MethodRecord) -> None:
        """Claim ``record.lookup`` for the record, or raise ``InvalidInput("lookup", ...)``."""
        assert record.lookup is not None
        key, now = self._keys.lookup(record.lookup), repr(self._clock.now())
        if self._run("CLAIM_CREATE", [key], [record.user_id, record.id, now]) == 1:
            return
        with self._guard():
            owner, method_id, claimed_at = hmget_replies(self._client.hmget(key, ["u", "m", "at"]))
        if owner is None or method_id is None or claimed_at is None:
            # released in between: one more try, no loop (a contended value is refused)
            if self._run("CLAIM_CREATE", [key], [record.user_id, record.id, now]) == 1:
                return
            raise InvalidInput("lookup", "already registered")
        with self._guard():
            # A reported method keeps its value: it may be restored.
            held = self._client.hexists(
                self._keys.methods(owner.decode()), method_id.decode()
            ) or self._client.hexists(self._keys.reported(owner.decode()), method_id.decode())
        young = self._clock.now() - float(claimed_at) < self._grace
        if held or young:
            raise InvalidInput("lookup", "already registered")
        # A claim whose method never appeared (its process died) or is gone: take it over.
        stale = [owner, method_id, claimed_at]
        if self._run("CLAIM_STEAL", [key], [*stale, record.user_id, record.id, now]) != 1:
            raise InvalidInput("lookup", "already registered")

    def _release_lookup(self, lookup: str, user_id: str, method_id: str) -> None:
        self._run("CLAIM_RELEASE", [self._keys.lookup(lookup)], [user_id, method_id])

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        updated = self._change(
            "UPDATE_METHOD",
            record.user_id,
            [self._keys.methods(record.user_id)],
            [record.id, method_body(record)],
            events,
        )
        return bool(updated == 1)

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        # Method ids are URL-safe base64 (no space): sorted and joined, one argument to compare.
        expected = "" if if_methods is None else " ".join(["ids", *sorted(if_methods)])
        keys = [self._keys.methods(user_id), self._keys.reported(user_id)]
        deleted = self._change("DELETE_METHOD", user_id, keys, [method_id, expected], events)
        if deleted == -1:
            raise MethodsChanged(f"the methods of {user_id!r} changed")
        if deleted is None:
            return False
        lookup = method_from_value(user_id, method_id, deleted)[0].lookup
        if lookup is not None:
            # If this fails, the claim outlives its method and is taken over after lookup_grace.
            self._release_lookup(lookup, user_id, method_id)
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
        written = [str(int(value)), repr(float(used_at))]
        if not self._cluster:
            # One server: the script also writes the events and deletes the counters.
            counters = [self._keys.counter(key) for key in reset]
            before = self._change("ADVANCE_COUNTER", user_id, [self._keys.methods(user_id)],
                                  [method_id, *written], events, extra_keys=counters)  # fmt: skip
            return isinstance(before, bytes)
        # A cluster: the events go to the user's outbox (same slot) and to the stream after the
        # script (inside transaction(): at the block's end); the counters, in other slots, are
        # cleared after the script.
        outbox = self._keys.user(user_id, "outbox")
        entries = [event_json(e, random_id()) for e in events]
        before = self._run(
            "ADVANCE_COUNTER",
            [self._keys.methods(user_id), outbox],
            [method_id, *written, *self._audit_args(entries, target="outbox")],
        )
        if not isinstance(before, bytes):
            return False
        if reset:
            try:
                self.counters(reset=reset)
            except StoreUnavailable as exc:
                # After the commit: a 503 now would say "nothing was changed" of a used code.
                # Counters left standing only make the throttle stricter.
                _log.warning("the throttle counters of a used code were not cleared: %s", exc)
        block: Block | None = getattr(self._tx, "block", None)
        if block is not None:
            block.advances.append(Advanced(user_id, method_id, "|".join(written), before, entries))
        elif entries:
            try:
                self._move_outbox(outbox)
            except StoreUnavailable:
                pass  # stored with the change; the next change or list_audit moves them
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
        # One script: on one server it deletes the counters too; on a cluster (other slots) they
        # are deleted after it, as advance_counter does.
        counters = [] if self._cluster else [self._keys.counter(key) for key in reset]
        done = self._change("RECORD_USE", user_id, [self._keys.methods(user_id)],
                            [method_id, repr(float(used_at))], events, extra_keys=counters)  # fmt: skip
        if done != 1:
            return False
        if self._cluster and reset:
            try:
                self.counters(reset=reset)
            except StoreUnavailable as exc:
                _log.warning("the throttle counters of a used method were not cleared: %s", exc)
        return True

    def checks_limits(self) -> bool:
        """:meth:`advance_counter_checked` is atomic here: one server (a cluster keeps the
        counters in other slots than the user's methods)."""
        return not self._cluster

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
        """:meth:`advance_counter` behind counter limits, in one script (one round trip): the
        refusal scope of the first of ``checks`` (counter key, limit, scope) whose live value is
        at its limit, with nothing written; else as :meth:`advance_counter`. ``reset`` must be
        the first keys of ``checks``. One server only (:meth:`checks_limits`). A session save
        planned in the block (:meth:`plan_session_save`) is written by the same script."""
        assert not self._cluster, "the counters are in other slots than the user's methods"
        keys = [key for key, _, _ in checks]
        assert keys[: len(reset)] == list(reset), "reset must be the first keys of checks"
        plan, session_keys, session_args = self._planned_save(user_id)
        args = [method_id, str(int(value)), repr(float(used_at)), repr(self._clock.now()),
                str(len(checks)), str(len(reset)), *(str(limit) for _, limit, _ in checks),
                *(scope for _, _, scope in checks), *session_args]  # fmt: skip
        counters = [self._keys.counter(key) for key in keys]
        before = self._change("ADVANCE_COUNTER_CHECKED", user_id, [self._keys.methods(user_id)],
                              args, events, extra_keys=counters + session_keys)  # fmt: skip
        if isinstance(before, list):  # stored, with the planned session (saved: 1, ended: 0)
            assert plan is not None
            plan.saved = bool(before[1])
            return True
        if isinstance(before, bytes) and before.startswith(b"limit:"):
            return before[len(b"limit:") :].decode()
        return isinstance(before, bytes)

    # -- per-user state -----------------------------------------------------------------------

    def get_user_state(self, user_id: str) -> UserState:
        kept = self._kept_reads(user_id)
        if kept is not None:
            raw = kept.state
        else:
            key = self._keys.user(user_id, STATE_PART)
            raw = cast("bytes | None", self._read_command(key, "GET", key))
        if raw is None:
            return UserState(user_id=user_id)
        v = loads(raw)
        return UserState(
            user_id=user_id,
            default_method_id=v["default_method_id"],
            skips_used=v["skips_used"],
            snoozed_until=v["snoozed_until"],
            confirmed_at=v["confirmed_at"],
            reregister=v["reregister"],
            extra=v["extra"],
        )

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None:
        self._change(
            "PUT_USER_STATE",
            state.user_id,
            [self._keys.user(state.user_id, STATE_PART)],
            [state_json(state)],
            events,
        )

    def list_user_ids(self) -> list[str]:
        """Every user with a method or a state, by SCAN over the keyspace (a report, not a hot path)."""
        return sorted(
            self._scan_users(METHODS_PART, "hash") | self._scan_users(STATE_PART, "string")
        )

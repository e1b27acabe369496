"""The Redis store's short-lived state: sessions, single-use challenges, throttle counters.

Each lives under its own key (session id, challenge key, counter key), so on a cluster each is
in its own slot: single-key commands and scripts, several keys at once in one non-transactional
pipeline, atomic per key. Expiry is the store's clock (``expires_at`` kept in the value); the
Redis TTL only frees the memory (store/redis.py's docstring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.json_documents import dumps, loads
from oidc_combinedreg.store.redis_connection import RedisConnection, pipe_eval
from oidc_combinedreg.store.redis_layout import (
    METHODS_PART,
    STATE_PART,
    expiry_ms,
    hash_replies,
    hmget_replies,
)
from oidc_combinedreg.store.session_plan import SessionPlan


@dataclass(frozen=True, slots=True)
class UserReads:
    """What a session's load inside a request brought along (store/request_reads.py): its
    user's methods hash (field -> value, as HGETALL answers) and state value (GET's)."""

    methods: dict[bytes, bytes]
    state: bytes | None


class RedisEphemeral(RedisConnection):
    """Sessions, challenges and counters of :class:`~oidc_combinedreg.store.redis.RedisStore`."""

    # -- sessions -----------------------------------------------------------------------------

    def load_session(self, sid: str) -> dict[str, Any] | None:
        key = self._keys.session(sid)
        if request_reads.kept() is None or self._cluster:
            data, expires_at = hmget_replies(self._read_command(key, "HMGET", key, "d", "e"))
            user = None
        else:
            # Inside a request on one server: the user's methods and state in the same round
            # trip (decision 216); the MFA verify, the MFA page and /authorize read them next.
            head, methods = self._keys.user_pattern(METHODS_PART)
            state = self._keys.user_pattern(STATE_PART)[1]
            reply = self._run("LOAD_SESSION_READS", [key], [head, methods, state])
            data, expires_at, user = reply[0], reply[1], reply[2]
        if data is None or expires_at is None or float(expires_at) <= self._clock.now():
            return None
        if user is not None:
            request_reads.keep(self, user.decode(), UserReads(hash_replies(reply[3]), reply[4]))
        return loads(data)

    def _kept_reads(self, user_id: str) -> UserReads | None:
        """``user_id``'s reads kept by this request's session load, if any."""
        return request_reads.kept_for(self, user_id, UserReads)

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
        if not self._cluster:
            # A save planned ahead may have been written by the code check's script already.
            answer, replaces, create = self._plans.settle(
                sid, payload, user_id, ttl, replaces, create
            )
            if answer is not None:
                return answer
        now = self._clock.now()
        expires_at, ttl_ms = repr(now + ttl), expiry_ms(ttl)
        replaced = None if replaces is None or replaces == sid else self._keys.session(replaces)
        if not self._cluster:
            # One script: the liveness check, the index entry, the session and the old id's
            # deletion together.
            index = [] if user_id is None else [self._keys.user(user_id, "sessions")]
            return bool(
                self._run(
                    "SAVE_SESSION_ONE_SERVER",
                    [self._keys.session(sid), *index, *([replaced] if replaced else [])],
                    [
                        payload,
                        expires_at,
                        ttl_ms,
                        sid,
                        repr(now),
                        user_id or "",
                        "1" if replaced else "0",
                        "0" if create else "1",
                    ],
                )  # fmt: skip
            )
        if not create and self.load_session(replaces or sid) is None:
            return False  # another slot: checked one round trip before the save
        if user_id is not None:
            # The index first: a session is never live without being reachable by "sign out
            # everywhere"; an index entry without its session is skipped and pruned later.
            self._run(
                "INDEX_SESSION",
                [self._keys.user(user_id, "sessions")],
                [repr(now), sid, expires_at, ttl_ms],
            )
        owner = [] if user_id is None else [user_id]
        with self._guard():
            # Different slots: one round trip, the save before the old id's deletion.
            pipe = self._client.pipeline(transaction=False)
            pipe_eval(pipe, lua.SAVE_SESSION, self._keys.session(sid),
                       payload, expires_at, ttl_ms, *owner)  # fmt: skip
            if replaced:
                pipe.delete(replaced)
            pipe.execute()
        return True

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
        """See ``LimitCheckedAdvance.plan_session_save``: one server only (a cluster keeps the
        session in another slot than the user's methods), written by ``advance_counter_checked``."""
        if not self._cluster:
            self._plans.plan(SessionPlan(sid, dumps(data), user_id, ttl, replaces, create))

    def _planned_save(self, user_id: str) -> tuple[SessionPlan | None, list[str], list[str]]:
        """The block's pending plan for ``user_id``, and the session part of the KEYS and ARGV
        of :data:`~oidc_combinedreg.store.redis_scripts.ADVANCE_COUNTER_CHECKED` that writes it."""
        plan = self._plans.pending(user_id)
        if plan is None:
            return None, [], ["0"]
        now = self._clock.now()
        sid, replaces = plan.sid, plan.replaces
        replaced = None if replaces is None or replaces == sid else self._keys.session(replaces)
        keys = [self._keys.session(sid), self._keys.user(user_id, "sessions")]
        args = ["7", plan.payload, repr(now + plan.ttl), str(expiry_ms(plan.ttl)), sid, user_id,
                "1" if replaced else "0", "0" if plan.create else "1"]  # fmt: skip
        return plan, keys + ([replaced] if replaced else []), args

    def delete_session(self, sid: str) -> None:
        with self._guard():
            self._client.delete(self._keys.session(sid))

    def delete_user_sessions(self, user_id: str) -> int:
        index = self._keys.user(user_id, "sessions")
        sids = cast("list[bytes]", self._read(index, lambda: self._client.zrange(index, 0, -1)))
        now, live = self._clock.now(), 0
        for sid in sids:
            # Deleted only if still this user's: the sid may have been saved again for another.
            expires_at = self._run("DELETE_SESSION_OF", [self._keys.session(sid.decode())],
                                   [user_id])  # fmt: skip
            live += expires_at is not None and float(expires_at) > now
        if sids:
            with self._guard():
                self._client.zrem(index, *sids)
        return live

    # -- single-use challenges ----------------------------------------------------------------

    def put_challenge(self, key: str, data: Mapping[str, Any], *, ttl: float) -> None:
        value = dumps({"d": dict(data), "e": self._clock.now() + ttl})
        with self._guard():
            self._client.set(self._keys.challenge(key), value, px=expiry_ms(ttl))

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        with self._guard():
            raw = self._client.getdel(self._keys.challenge(key))
        return self._live_challenge(raw)

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        name = self._keys.challenge(key)
        raw = cast("bytes | None", self._read_command(name, "GET", name))
        return self._live_challenge(raw)

    def _live_challenge(self, raw: bytes | str | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        value = loads(raw)
        return None if value["e"] <= self._clock.now() else dict(value["d"])

    # -- counters -----------------------------------------------------------------------------

    def incr(self, key: str, *, ttl: float | None) -> int:
        now = self._clock.now()
        window = ["", "0"] if ttl is None else [repr(now + ttl), str(expiry_ms(ttl))]
        return int(self._run("INCR", [self._keys.counter(key)], [repr(now), *window]))

    def get_count(self, key: str) -> int:
        name = self._keys.counter(key)
        reply = hmget_replies(self._read_command(name, "HMGET", name, "v", "e"))
        return self._live_count(reply)

    def reset_count(self, key: str) -> None:
        with self._guard():
            self._client.delete(self._keys.counter(key))

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
        with self._guard():
            # Not a transaction (the keys are in different cluster slots): each INCR script is
            # atomic on its key, and the pipeline keeps the order of commands to one node.
            pipe = self._client.pipeline(transaction=False)
            for key in reset:
                pipe.delete(self._keys.counter(key))
            for key, ttl in incr:
                window = ["", "0"] if ttl is None else [repr(now + ttl), str(expiry_ms(ttl))]
                pipe_eval(pipe, lua.INCR, self._keys.counter(key), repr(now), *window)
            for key in read:
                pipe.hmget(self._keys.counter(key), ["v", "e"])
            replies = cast("list[Any]", pipe.execute())[len(reset) :]
        values = [int(value) for value in replies[: len(incr)]]
        return values + [self._live_count(hmget_replies(pair)) for pair in replies[len(incr) :]]

    def _live_count(self, reply: list[bytes | None]) -> int:
        value, ends = reply
        if value is None or (ends is not None and float(ends) <= self._clock.now()):
            return 0
        return int(value)

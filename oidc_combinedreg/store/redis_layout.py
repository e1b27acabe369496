"""The Redis store's key layout and value encodings (the why of both: store/redis.py's docstring).

Pure functions and one dataclass, no client: what a key is named and how a method, an audit
event or a user's state is written as bytes, so the store's parts (redis_methods.py,
redis_ephemeral.py, redis_audit.py) and the Lua scripts (redis_scripts.py) agree on one format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, cast

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import dumps, loads

#: the ``part`` of the key of a user's methods hash
METHODS_PART = "registered"
#: the ``part`` of the key of a user's state (a string: ``state_json``)
STATE_PART = "state"
#: the ``part`` of the key of a user's reported methods ("This wasn't me"): field = method id,
#: value = ``<reported_at>|<the value it had in the methods hash>``
REPORTED_PART = "reported"


def expiry_ms(seconds: float) -> int:
    """A Redis TTL in ms: at least 1, since a TTL of 0 is an error and expiry is the clock's job."""
    return max(1, math.ceil(seconds * 1000))


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The key layout. ``{...}`` is the Redis Cluster hash tag: keys with the same tag share a slot."""

    prefix: str = "creg"
    #: a cluster's session keys carry a hash tag (see :meth:`session`)
    cluster: bool = False

    def user(self, user_id: str, part: str) -> str:
        """``creg:{u:<user>}:<part>``: registered (the methods), state, sessions, outbox."""
        return f"{self.prefix}:{{u:{user_id}}}:{part}"

    def methods(self, user_id: str) -> str:
        """The user's methods: one hash, field = method id (see store/redis.py's docstring)."""
        return self.user(user_id, METHODS_PART)

    def reported(self, user_id: str) -> str:
        """The user's reported methods: one hash, field = method id (see ``REPORTED_PART``)."""
        return self.user(user_id, REPORTED_PART)

    def user_pattern(self, part: str) -> tuple[str, str]:
        """The text before and after the user id in ``user(..., part)`` keys (for SCAN)."""
        return f"{self.prefix}:{{u:", f"}}:{part}"

    def lookup(self, value: str) -> str:
        return f"{self.prefix}:lookup:{value}"

    def session(self, sid: str) -> str:
        """On a cluster the part of the id before its last ``.`` is the hash tag: a rotated id
        (``<key>.<new secret>``, web/session.py) stays in the slot of the one it replaces, so a
        sign-in's session lives on one node from the password to the end (and the MFA step saves
        its upgraded session where it has just read it)."""
        if self.cluster:
            head, dot, tail = sid.rpartition(".")
            return f"{self.prefix}:session:{{{head or tail}}}{dot}{tail if head else ''}"
        return f"{self.prefix}:session:{sid}"

    def challenge(self, key: str) -> str:
        return f"{self.prefix}:challenge:{key}"

    def counter(self, key: str) -> str:
        return f"{self.prefix}:count:{key}"

    def audit(self) -> str:
        """The audit stream."""
        return f"{self.prefix}:audit"


def compact(value: Any) -> bytes:
    """JSON as UTF-8 (lone surrogates kept): never a raw newline, which ends a value's parts."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


def method_body(record: MethodRecord) -> bytes:
    """What ``update_method`` replaces: ``<[label, data] as JSON>\\n<secret bytes>``."""
    return compact([record.label, dict(record.data)]) + b"\n" + bytes(record.secret)


def method_value(record: MethodRecord) -> bytes:
    """The value after ``<kind>|<seq>|`` (the add script puts those in front)."""
    used = b"" if record.last_used_at is None else repr(float(record.last_used_at)).encode()
    lookup = b"" if record.lookup is None else compact(record.lookup)
    header = [str(int(record.counter)).encode(), used, repr(float(record.created_at)).encode()]
    return b"|".join([*header, lookup]) + b"\n" + method_body(record)


def method_from_value(user_id: str, method_id: str, raw: bytes) -> tuple[MethodRecord, int]:
    """The record and its insertion sequence, from one field of the methods hash."""
    header, _, rest = raw.partition(b"\n")
    text = header.decode("utf-8", "surrogatepass")
    kind, seq, counter, used, created, lookup = text.split("|", 5)
    body, _, secret = rest.partition(b"\n")
    label, data = json.loads(body.decode("utf-8", "surrogatepass"))
    record = MethodRecord(
        id=method_id,
        user_id=user_id,
        kind=MethodKind(kind),
        label=label,
        created_at=float(created),
        data=data,
        secret=secret,
        counter=int(counter),
        last_used_at=float(used) if used else None,
        lookup=json.loads(lookup) if lookup else None,
    )
    return record, int(seq)


def event_json(event: AuditEvent, eid: str | None) -> str:
    """An audit entry; ``eid`` (cluster only) tells apart copies of one event moved twice."""
    v = {"at": event.at, "event": event.event, "user_id": event.user_id, "outcome": event.outcome,
         "ip": event.ip, "correlation_id": event.correlation_id, "detail": dict(event.detail)}  # fmt: skip
    if eid is not None:
        v["eid"] = eid
    return dumps(v)


def event_from_json(raw: bytes) -> tuple[AuditEvent, str | None]:
    v = loads(raw)
    event = AuditEvent(
        at=v["at"], event=v["event"], user_id=v["user_id"], outcome=v["outcome"], ip=v["ip"],
        correlation_id=v["correlation_id"], detail=v["detail"],
    )  # fmt: skip
    return event, v.get("eid")


def state_json(state: UserState) -> str:
    return dumps(
        {"default_method_id": state.default_method_id, "skips_used": state.skips_used,
         "snoozed_until": state.snoozed_until, "confirmed_at": state.confirmed_at,
         "reregister": state.reregister, "extra": dict(state.extra)}
    )  # fmt: skip


def hmget_replies(values: object) -> list[bytes | None]:
    """Replies of HMGET: bytes, since the client was checked for ``decode_responses=False``."""
    return cast("list[bytes | None]", values)


def hash_replies(values: object) -> dict[bytes, bytes]:
    """The reply of HGETALL as a dict: RESP3 (redis-py's default since 8) sends a map, RESP2
    the fields and values in turn (what redis-py's reply callback pairs up for ``hgetall``)."""
    if isinstance(values, dict):
        return cast("dict[bytes, bytes]", values)
    flat = cast("list[bytes]", values)
    return dict(zip(flat[::2], flat[1::2], strict=True))

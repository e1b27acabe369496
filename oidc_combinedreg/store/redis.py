"""The Redis backend: one store shared by many workers and hosts (standalone, Cluster or Sentinel).

Choices, and why (``docs/redis.md`` has the whole key layout):

* **One user, one hash tag.** Every key of a user carries ``{u:<user id>}``, so the multi-key
  changes of one user (the user's methods and audit outbox) live in one cluster slot and run as
  one Lua script (``store/redis_scripts.py``): count-and-insert under a limit, delete-and-audit,
  compare-and-set of a counter and its audit. Keys addressed by something else (session id,
  challenge key, counter key, lookup value) are single keys, touched by single-key commands or
  scripts; several of them in one call (the throttle's ``counters``, a session save that deletes
  the id it replaces) go in one non-transactional pipeline, atomic per key. On one server (no
  slots) a session save is one script over the session, the user's session index and the
  replaced id.
* **A user's methods are one hash, one compact string per method.** ``creg:{u:<user>}:registered``
  maps each method id to
  ``<kind>|<seq>|<counter>|<last used>|<created>|<lookup>\\n<[label, data] as JSON>\\n<secret>``.
  One hash, so ``list_methods`` is one ``HGETALL`` and ``get_method`` one ``HGET`` (one round
  trip each), and a user is one key, not a key per method plus an index (Redis spends about 100
  bytes on each key; a user with three methods stays under 2 KB at default settings). One string
  per method, because a hash cannot nest. The header, up to the first newline, holds what the
  scripts read (the kind for the per-kind limit, ``seq`` for insertion order, the counter and last
  use for the compare-and-set) and what an update keeps (created, lookup); scripts find its ``|``
  with a plain ``string.find`` and compare counters as decimal text, exact beyond 2**53 (Lua's
  ``cjson`` and ``cmsgpack`` would turn numbers into doubles). The lookup (any text: a token
  serial) is JSON and last in the header, so a ``|`` or newline in it cannot shift the fields.
  JSON never holds a raw newline, so the secret follows the body's newline as exact bytes.
  ``seq`` is one above the greatest stored: ties of ``created_at`` list in insertion order. The
  key is not named ``methods`` (a zset index in development builds), so leftovers of those builds
  are ignored instead of failing with ``WRONGTYPE``.
* **Lookup values are claimed first.** A WebAuthn credential id or token serial is unique across
  all users, so its claim key lives in its own slot: ``add_method`` claims it with a create-if-absent
  script, then inserts the method, and releases the claim if the insert is refused. A process that
  dies between the two leaves a claim without a method; after ``lookup_grace`` seconds the next
  claimant takes it over (compare-and-set), so the value is never lost for good.
* **Expiry by the injected clock, cleanup by Redis.** Sessions, challenges and windowed counters
  hold their ``expires_at`` and are invisible once the store's clock passes it; the Redis TTL only
  frees the memory.
* **Audit in one stream, written by the same script as the change.** On one server (or behind
  Sentinel) the change script appends its events to the stream ``creg:audit`` itself. On a cluster
  the stream is in another slot, so the script appends them to the user's outbox list (same slot,
  same script) and the client then moves them to the stream and removes them from the outbox: a
  crash in between leaves them in the outbox, moved by the next change of that user or by the next
  :meth:`RedisStore.list_audit`; a move repeated after a crash is told apart by the event's
  ``eid``. One stream (not one per user) because a stream costs about 4 KB before its first event
  and because readers (``list_audit``, a SIEM tailing with ``XREAD``) want one log in write order.
  It is trimmed by age (``audit_retention``) and length (``audit_maxlen``). On a cluster the one
  stream must not gate sign-in: an event the stream's primary cannot take goes to the user's
  outbox, and inside ``transaction()`` a user's events wait there until the block ends (so a block
  that fails unwritten can take its ``mfa.succeeded`` back, with its used code).
* **Fail closed, quickly.** Every redis-py error becomes
  :class:`~oidc_combinedreg.exceptions.StoreUnavailable`. :meth:`RedisStore.from_url` bounds the
  connect and read timeouts and does not retry: a retried ``INCR`` or ``XADD`` whose first reply
  was lost would count twice, and the web layer answers 503 at once instead of after a backoff.
  The one exception: on a cluster, a call whose slot moved in a failover (its old primary refuses
  connections) is sent once more after the slot map is read again, if it is a read or was never
  sent.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias, TypeVar, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedSSLConnection

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.crypto import random_id
from oidc_combinedreg.exceptions import (
    InvalidInput,
    LimitReached,
    MethodsChanged,
    StoreUnavailable,
)
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState

__all__ = [
    "DEFAULT_AUDIT_MAXLEN",
    "DEFAULT_AUDIT_RETENTION",
    "RedisClient",
    "RedisKeys",
    "RedisStore",
]

RedisClient: TypeAlias = "redis.Redis | RedisCluster"
_T = TypeVar("_T")
_log = logging.getLogger("oidc_combinedreg.store")

#: audit events older than this (seconds, by the store's clock at write time) are trimmed
DEFAULT_AUDIT_RETENTION = 400 * 86400.0
#: at most this many events are kept (about 250 bytes each): a cap on memory if events flood in
DEFAULT_AUDIT_MAXLEN = 2_000_000
#: ``list_audit(since=...)`` stops reading entries written this long (s) before ``since``: events
#: are assumed to be stamped (``at``) no later than this after the store's clock when written
AUDIT_CLOCK_SKEW = 3600.0
_CHUNK = 1000
#: the ``part`` of the key of a user's methods hash
_METHODS = "registered"
#: the ``part`` of the key of a user's reported methods ("This wasn't me"): field = method id,
#: value = ``<reported_at>|<the value it had in the methods hash>``
_REPORTED = "reported"
#: a cluster's slot map is read again after a failed call at most this often (seconds)
_MAP_READ_EVERY = 0.25
#: times a report reads the user's session index again when a session came or went meanwhile
_REPORT_TRIES = 5
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)


def _ms(seconds: float) -> int:
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
        """The user's methods: one hash, field = method id (see the module docstring)."""
        return self.user(user_id, _METHODS)

    def reported(self, user_id: str) -> str:
        """The user's reported methods: one hash, field = method id (see ``_REPORTED``)."""
        return self.user(user_id, _REPORTED)

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


def _compact(value: Any) -> bytes:
    """JSON as UTF-8 (lone surrogates kept): never a raw newline, which ends a value's parts."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


def _method_body(record: MethodRecord) -> bytes:
    """What ``update_method`` replaces: ``<[label, data] as JSON>\\n<secret bytes>``."""
    return _compact([record.label, dict(record.data)]) + b"\n" + bytes(record.secret)


def _method_value(record: MethodRecord) -> bytes:
    """The value after ``<kind>|<seq>|`` (the add script puts those in front)."""
    used = b"" if record.last_used_at is None else repr(float(record.last_used_at)).encode()
    lookup = b"" if record.lookup is None else _compact(record.lookup)
    header = [str(int(record.counter)).encode(), used, repr(float(record.created_at)).encode()]
    return b"|".join([*header, lookup]) + b"\n" + _method_body(record)


def _method_from_value(user_id: str, method_id: str, raw: bytes) -> tuple[MethodRecord, int]:
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


def _event_json(event: AuditEvent, eid: str | None) -> str:
    """An audit entry; ``eid`` (cluster only) tells apart copies of one event moved twice."""
    v = {"at": event.at, "event": event.event, "user_id": event.user_id, "outcome": event.outcome,
         "ip": event.ip, "correlation_id": event.correlation_id, "detail": dict(event.detail)}  # fmt: skip
    if eid is not None:
        v["eid"] = eid
    return _dumps(v)


def _event_from_json(raw: bytes) -> tuple[AuditEvent, str | None]:
    v = json.loads(raw)
    event = AuditEvent(
        at=v["at"], event=v["event"], user_id=v["user_id"], outcome=v["outcome"], ip=v["ip"],
        correlation_id=v["correlation_id"], detail=v["detail"],
    )  # fmt: skip
    return event, v.get("eid")


def _matches(
    event: AuditEvent,
    user_id: str | None,
    event_prefix: str | None,
    since: float | None,
    until: float | None,
) -> bool:
    return (
        (user_id is None or event.user_id == user_id)
        and (event_prefix is None or event.event.startswith(event_prefix))
        and (since is None or event.at >= since)
        and (until is None or event.at < until)
    )


def _state_json(state: UserState) -> str:
    return _dumps(
        {"default_method_id": state.default_method_id, "skips_used": state.skips_used,
         "snoozed_until": state.snoozed_until, "confirmed_at": state.confirmed_at,
         "reregister": state.reregister, "extra": dict(state.extra)}
    )  # fmt: skip


def _replies(values: object) -> list[bytes | None]:
    """Replies of HMGET: bytes, since the client was checked for ``decode_responses=False``."""
    return cast("list[bytes | None]", values)


def _pipe_eval(pipe: Any, script: str, key: str, *args: str | int) -> None:
    """Queue a one-key script. EVAL with the text, not EVALSHA: a pipeline cannot recover from
    NOSCRIPT (a restarted server), and the server caches the compiled script by its digest anyway.
    ``execute_command``, because redis-py's cluster pipeline has no ``eval``."""
    pipe.execute_command("EVAL", script, 1, key, *args)


@dataclass(frozen=True, slots=True)
class _Advanced:
    """A committed ``advance_counter`` on a cluster, kept until its transaction ends."""

    user_id: str
    method_id: str
    #: ``<counter>|<last used>`` as the advance wrote it, and as it was before
    written: str
    before: bytes
    entries: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Block:
    """What a cluster's ``transaction()`` block may take back when it fails (see there)."""

    advances: list[_Advanced] = field(default_factory=list)
    #: (user id, outbox entry) of the block's ``append_audit`` calls
    events: list[tuple[str, str]] = field(default_factory=list)

    def users(self) -> list[str]:
        named = [a.user_id for a in self.advances] + [user for user, _ in self.events]
        return list(dict.fromkeys(named))


def _surely_unwritten(exc: BaseException) -> bool:
    """Whether the ``StoreUnavailable`` that ended a transaction wrote nothing: a Redis error
    reply (``CLUSTERDOWN``, ``OOM``, ...) is a command refused; a connection that could not be
    made never carried one. A timeout or a connection lost mid-command may have applied."""
    cause = exc.__cause__
    if isinstance(cause, ResponseError):
        return True
    return isinstance(cause, RedisError) and "connecting to" in str(cause)


def _stream_position(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


class RedisStore:
    """The :class:`~oidc_combinedreg.store.base.Store` on Redis.

    ``client`` is a ``redis.Redis`` (also from ``Sentinel.master_for``) or a
    ``redis.cluster.RedisCluster``, made with ``decode_responses=False`` (secrets are bytes); the
    store owns it and closes it in :meth:`close`. Prefer :meth:`from_url`, which bounds timeouts.
    ``key_prefix`` separates several deployments on one Redis. ``audit_retention`` (seconds) and
    ``audit_maxlen`` (events) bound the audit stream; ``None`` keeps everything.
    ``lookup_grace`` is how old (seconds) a lookup claim without its method must be before another
    add may take it over (see the module docstring).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        clock: Clock,
        key_prefix: str = "creg",
        audit_retention: float | None = DEFAULT_AUDIT_RETENTION,
        audit_maxlen: int | None = DEFAULT_AUDIT_MAXLEN,
        lookup_grace: float = 60.0,
    ) -> None:
        if not key_prefix or any(c in key_prefix for c in "{}"):
            raise ValueError("key_prefix must be non-empty and hold no '{' or '}' (hash tags)")
        if client.get_encoder().decode_responses:
            raise ValueError("the Redis client must be made with decode_responses=False")
        self._client = client
        self._clock = clock
        self._retention = audit_retention
        self._maxlen = audit_maxlen
        self._grace = lookup_grace
        self._closed = False
        self._cluster = isinstance(client, RedisCluster)
        self._keys = RedisKeys(key_prefix, cluster=self._cluster)
        #: per thread: what the open ``transaction()`` block may take back (cluster only)
        self._tx = threading.local()
        #: when a failed call last read the cluster's slot map again (``time.monotonic()``)
        self._map_read_at = -math.inf
        self._scripts: dict[str, Script] = {
            name: client.register_script(getattr(lua, name)) for name in lua.__all__
            if name != "AUDIT_LIB"
        }  # fmt: skip

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock,
        cluster: bool = False,
        sentinel: str | None = None,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        key_prefix: str = "creg",
        audit_retention: float | None = DEFAULT_AUDIT_RETENTION,
        audit_maxlen: int | None = DEFAULT_AUDIT_MAXLEN,
    ) -> RedisStore:
        """A store on ``url`` with bounded timeouts (seconds) and no retries.

        * ``redis://[[user]:password@]host:port/db`` (``rediss://`` for TLS): one server.
        * ``cluster=True``: ``url`` names any node of a Redis Cluster; the client finds the rest.
        * ``sentinel="mymaster"``: ``url`` lists the Sentinels,
          ``redis://[[user]:password@]host1:26379,host2:26379/db``; the password is the master's.
        """
        if cluster and sentinel is not None:
            raise ValueError("choose cluster or sentinel, not both")
        timeouts: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        client: RedisClient
        if sentinel is not None:
            client = _sentinel_master(url, sentinel, timeouts)
        elif cluster:
            client = RedisCluster.from_url(url, **timeouts)
        else:
            client = redis.Redis.from_url(url, **timeouts)
        return cls(
            client, clock=clock, key_prefix=key_prefix, audit_retention=audit_retention,
            audit_maxlen=audit_maxlen,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"RedisStore({type(self._client).__name__}, key_prefix={self._keys.prefix!r})"

    @property
    def client(self) -> RedisClient:
        """The redis-py client (for checks of the server: store/redis_persistence.py)."""
        return self._client

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Any failure to talk to Redis becomes ``StoreUnavailable``: callers fail closed."""
        if self._closed:
            raise StoreUnavailable(f"{self!r} is closed")
        try:
            yield
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"Redis store: {type(exc).__name__}: {exc}") from exc

    def _read(self, key: str, call: Callable[[], _T]) -> _T:
        """A read of ``key``: ``call()``, failing closed as every call does.

        On a cluster, a read that failed only because its slot moved (a replica was promoted
        since this process last read the slot map: the old primary refuses connections) is
        tried once more after the map is read again. A read whose slot is where it was (its
        primary is down and not yet replaced) is not retried: the 503 comes at once."""
        return self._moved_once(key, call, writes=False)

    def _moved_once(self, key: str, call: Callable[[], _T], *, writes: bool) -> _T:
        """``call()`` on ``key``'s slot; on a cluster once more if its slot moved (see
        :meth:`_read`). A write only when its connection could not even be made (never sent):
        a write whose reply was lost may have applied, and is never sent twice."""
        with self._guard():
            if not self._cluster:
                return call()
            before = self._slot_owner(key)
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                unsent = "connecting to" in str(exc)  # redis-py: connect() failed
                if before is None or (writes and not unsent) or not self._slot_moved(key, before):
                    raise
            return call()

    def _slot_owner(self, key: str) -> str | None:
        try:
            client = cast(RedisCluster, self._client)
            return str(client.get_node_from_key(key).name)  # type: ignore[no-untyped-call]
        except RedisClusterException:
            return None

    def _slot_moved(self, key: str, before: str) -> bool:
        """True if ``key``'s slot is no longer on ``before``: in the map as another thread left
        it, else after reading the map again (the failed node asked last). At most one read of
        the map per :data:`_MAP_READ_EVERY` seconds: while a primary is down and not replaced,
        every request for its slots fails, and each need not ask the cluster again."""
        if self._slot_owner(key) not in (None, before):
            return True
        now = time.monotonic()
        if now - self._map_read_at < _MAP_READ_EVERY:
            return False
        self._map_read_at = now
        client = cast(RedisCluster, self._client)
        try:
            client.nodes_manager.initialize(last_failed_node_name=before)
        except (RedisError, RedisClusterException, OSError):
            return False
        return self._slot_owner(key) not in (None, before)

    def _run(self, script: str, keys: Sequence[str], args: Sequence[str | bytes | int]) -> Any:
        """``EVALSHA``; a server that does not know the script yet (restarted, or a replica
        just promoted: scripts are not replicated) gets it by ``EVAL`` on that node alone.
        (redis-py's own recovery sends ``SCRIPT LOAD`` to every primary of a cluster, which
        fails while any one of them is down.) NOSCRIPT ran nothing, so this sends no write twice.
        On a cluster, a script whose slot moved is sent again only if it was never sent."""
        code = self._scripts[script]

        def run() -> Any:
            try:
                return self._client.evalsha(code.sha, len(keys), *keys, *args)
            except NoScriptError:
                return self._client.eval(cast(str, code.script), len(keys), *keys, *args)

        return self._moved_once(keys[0], run, writes=True)

    def _audit_args(self, entries: Sequence[str | bytes], *, target: str = "stream") -> list[Any]:
        now = self._clock.now()
        minid = "" if self._retention is None else str(max(0, int((now - self._retention) * 1000)))
        maxlen = "" if self._maxlen is None else str(self._maxlen)
        return [target, str(int(now * 1000)), minid, maxlen, str(len(entries)), *entries]

    def _change(
        self,
        script: str,
        user_id: str,
        keys: Sequence[str],
        args: Sequence[str | bytes],
        events: Sequence[AuditEvent],
        *,
        extra_keys: Sequence[str] = (),
    ) -> Any:
        """Run a change script of ``user_id`` that also writes ``events`` (see the module doc).

        KEYS are ``keys``, the audit target, then ``extra_keys`` (one server only: any slot)."""
        if not self._cluster:
            audit = self._audit_args([_event_json(e, None) for e in events])
            return self._run(script, [*keys, self._keys.audit(), *extra_keys], [*args, *audit])
        assert not extra_keys, "a cluster script touches one slot"
        outbox = self._keys.user(user_id, "outbox")
        entries = [_event_json(e, random_id()) for e in events]
        result = self._run(
            script, [*keys, outbox], [*args, *self._audit_args(entries, target="outbox")]
        )
        if events:
            try:
                self._move_outbox(outbox)
            except StoreUnavailable:
                pass  # the change and its events are stored; the next change or list_audit moves them
        return result

    def _move_outbox(self, outbox: str) -> None:
        """Cluster: copy the outbox's events to the stream, then remove exactly those from it."""
        with self._guard():
            pending = cast("list[bytes]", self._client.lrange(outbox, 0, -1))
        if not pending:
            return
        self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args(pending))
        with self._guard():
            pipe = self._client.pipeline(transaction=False)
            for entry in pending:
                pipe.lrem(outbox, 1, entry.decode())  # JSON text: ASCII, as written
            pipe.execute()

    def _scan_users(self, part: str, kind: str) -> set[str]:
        head, tail = self._keys.user_pattern(part)
        pattern = head.translate(_GLOB_SPECIAL) + "*" + tail.translate(_GLOB_SPECIAL)

        def scan() -> list[str]:
            found = self._client.scan_iter(match=pattern, count=_CHUNK, _type=kind)
            return [k.decode() for k in found]

        with self._guard():
            try:
                keys = scan()
            except (redis.ConnectionError, redis.TimeoutError):
                # A report: on a cluster, once more with the map read again (a failover since).
                if not self._cluster:
                    raise
                cast(RedisCluster, self._client).nodes_manager.initialize()
                keys = scan()
        return {k[len(head) : -len(tail)] for k in keys if k.startswith(head) and k.endswith(tail)}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Each call is one atomic command or script already (the keys of one block live in
        different cluster slots), so nothing is grouped, with one exception on a cluster.

        There, the block's ``advance_counter`` calls (a used code) and ``append_audit`` calls of
        a user (the ``mfa.succeeded`` of the MFA step) are taken back if the block raises a
        ``StoreUnavailable`` that surely wrote nothing (the upgraded session's save refused: its
        node down), as SQLite rolls the whole block back on ``StoreUnavailable``: the counter
        returns to its value before (if still the advance's), and the events, which wait in the
        user's outbox until the block ends, are removed from it. Any other end of the block
        keeps them (as SQLite commits a block that raises anything else) and moves them to the
        stream. Other writes stay (each was atomic on its own): a code sent by text stays
        taken, the throttle's counters a success cleared stay cleared."""
        if not self._cluster or getattr(self._tx, "block", None) is not None:
            yield
            return
        block = _Block()
        self._tx.block = block
        try:
            yield
        except StoreUnavailable as exc:
            self._tx.block = None
            if _surely_unwritten(exc):
                self._take_back(block)
            else:
                self._keep(block)
            raise
        except BaseException:
            self._tx.block = None
            self._keep(block)
            raise
        self._tx.block = None
        self._keep(block)

    def _keep(self, block: _Block) -> None:
        """The block's events to the stream; best effort: they wait in the outbox otherwise,
        moved by the user's next change or ``list_audit``."""
        for user in block.users():
            try:
                self._move_outbox(self._keys.user(user, "outbox"))
            except StoreUnavailable:
                pass

    def _take_back(self, block: _Block) -> None:
        for advanced in reversed(block.advances):
            keys = [self._keys.methods(advanced.user_id),
                    self._keys.user(advanced.user_id, "outbox")]  # fmt: skip
            args: list[str | bytes] = [advanced.method_id, advanced.written, advanced.before,
                    str(len(advanced.entries)), *advanced.entries]  # fmt: skip
            try:
                self._run("UNDO_ADVANCE", keys, args)
            except StoreUnavailable as exc:
                # The user's own node is gone too: the code stays used, its events are kept.
                _log.warning("a used code could not be taken back after its block failed: %s",
                             exc)  # fmt: skip
        try:
            with self._guard():
                pipe = self._client.pipeline(transaction=False)
                for user, entry in block.events:
                    pipe.lrem(self._keys.user(user, "outbox"), 1, entry)
                if block.events:
                    pipe.execute()
        except StoreUnavailable as exc:
            _log.warning("the events of a failed block could not be taken back: %s", exc)
        self._keep(block)  # whatever could not be taken back

    def serialized(self) -> bool:
        return False  # other clients' commands run between a block's calls

    def close(self) -> None:
        self._closed = True
        if isinstance(self._client, RedisCluster):
            # RedisCluster.close() leaves the nodes' pools (made by the client) connected
            self._client.disconnect_connection_pools()  # type: ignore[no-untyped-call]
        self._client.close()

    # -- methods ------------------------------------------------------------------------------

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        key = self._keys.methods(user_id)
        values = cast("dict[bytes, bytes]", self._read(key, lambda: self._client.hgetall(key)))
        found = [
            _method_from_value(user_id, method_id.decode(), raw)
            for method_id, raw in values.items()
        ]
        found.sort(key=lambda pair: (pair[0].created_at, pair[1]))
        return [record for record, _ in found]

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        # The key holds the user id, so another user's method id is simply not there (no IDOR).
        key = self._keys.methods(user_id)
        raw = cast("bytes | None", self._read(key, lambda: self._client.hget(key, method_id)))
        return None if raw is None else _method_from_value(user_id, method_id, raw)[0]

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        key = self._keys.lookup(lookup)
        owner, method_id = _replies(self._read(key, lambda: self._client.hmget(key, ["u", "m"])))
        if owner is None or method_id is None:
            return None
        found = self.get_method(owner.decode(), method_id.decode())
        return found if found is not None and found.lookup == lookup else None

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        key = self._keys.reported(user_id)
        values = cast("dict[bytes, bytes]", self._read(key, lambda: self._client.hgetall(key)))
        found = []
        for method_id, raw in values.items():
            at, _, value = raw.partition(b"|")
            record, seq = _method_from_value(user_id, method_id.decode(), value)
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
                self._keys.user(user_id, "state"), index]  # fmt: skip
        prefix = self._keys.session("")
        args = [user_id, _state_json(state), repr(float(at))]
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
        value = _method_value(record)
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
            owner, method_id, claimed_at = _replies(self._client.hmget(key, ["u", "m", "at"]))
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
            [record.id, _method_body(record)],
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
        lookup = _method_from_value(user_id, method_id, deleted)[0].lookup
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
        entries = [_event_json(e, random_id()) for e in events]
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
        block: _Block | None = getattr(self._tx, "block", None)
        if block is not None:
            block.advances.append(_Advanced(user_id, method_id, "|".join(written), before, entries))
        elif entries:
            try:
                self._move_outbox(outbox)
            except StoreUnavailable:
                pass  # stored with the change; the next change or list_audit moves them
        return True

    # -- per-user state -----------------------------------------------------------------------

    def get_user_state(self, user_id: str) -> UserState:
        key = self._keys.user(user_id, "state")
        raw = cast("bytes | None", self._read(key, lambda: self._client.get(key)))
        if raw is None:
            return UserState(user_id=user_id)
        v = json.loads(raw)
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
            [self._keys.user(state.user_id, "state")],
            [_state_json(state)],
            events,
        )

    def list_user_ids(self) -> list[str]:
        """Every user with a method or a state, by SCAN over the keyspace (a report, not a hot path)."""
        return sorted(self._scan_users(_METHODS, "hash") | self._scan_users("state", "string"))

    # -- sessions -----------------------------------------------------------------------------

    def load_session(self, sid: str) -> dict[str, Any] | None:
        key = self._keys.session(sid)
        data, expires_at = _replies(self._read(key, lambda: self._client.hmget(key, ["d", "e"])))
        if data is None or expires_at is None or float(expires_at) <= self._clock.now():
            return None
        return dict(json.loads(data))

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
        now = self._clock.now()
        expires_at, ttl_ms, payload = repr(now + ttl), _ms(ttl), _dumps(data)
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
            _pipe_eval(pipe, lua.SAVE_SESSION, self._keys.session(sid),
                       payload, expires_at, ttl_ms, *owner)  # fmt: skip
            if replaced:
                pipe.delete(replaced)
            pipe.execute()
        return True

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
        value = _dumps({"d": dict(data), "e": self._clock.now() + ttl})
        with self._guard():
            self._client.set(self._keys.challenge(key), value, px=_ms(ttl))

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        with self._guard():
            raw = self._client.getdel(self._keys.challenge(key))
        return self._live_challenge(raw)

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        name = self._keys.challenge(key)
        raw = cast("bytes | None", self._read(name, lambda: self._client.get(name)))
        return self._live_challenge(raw)

    def _live_challenge(self, raw: bytes | str | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        value = json.loads(raw)
        return None if value["e"] <= self._clock.now() else dict(value["d"])

    # -- counters -----------------------------------------------------------------------------

    def incr(self, key: str, *, ttl: float | None) -> int:
        now = self._clock.now()
        window = ["", "0"] if ttl is None else [repr(now + ttl), str(_ms(ttl))]
        return int(self._run("INCR", [self._keys.counter(key)], [repr(now), *window]))

    def get_count(self, key: str) -> int:
        name = self._keys.counter(key)
        reply = _replies(self._read(name, lambda: self._client.hmget(name, ["v", "e"])))
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
                window = ["", "0"] if ttl is None else [repr(now + ttl), str(_ms(ttl))]
                _pipe_eval(pipe, lua.INCR, self._keys.counter(key), repr(now), *window)
            for key in read:
                pipe.hmget(self._keys.counter(key), ["v", "e"])
            replies = cast("list[Any]", pipe.execute())[len(reset) :]
        values = [int(value) for value in replies[: len(incr)]]
        return values + [self._live_count(_replies(pair)) for pair in replies[len(incr) :]]

    def _live_count(self, reply: list[bytes | None]) -> int:
        value, ends = reply
        if value is None or (ends is not None and float(ends) <= self._clock.now()):
            return 0
        return int(value)

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        entry = _event_json(event, random_id() if self._cluster else None)
        if not self._cluster or event.user_id is None:
            self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args([entry]))
            return
        block: _Block | None = getattr(self._tx, "block", None)
        if block is not None:
            # Inside a block: in the user's outbox until the block ends (see transaction()).
            outbox = self._keys.user(event.user_id, "outbox")
            self._run("WRITE_AUDIT", [outbox], self._audit_args([entry], target="outbox"))
            block.events.append((event.user_id, entry))
            return
        try:
            self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args([entry]))
        except StoreUnavailable:
            # The stream's node is down: a sign-in is not refused for it. The event waits in the
            # user's outbox (the user's own slot) until moved; if the first write did reach the
            # stream, the copy has the same eid and is listed once.
            outbox = self._keys.user(event.user_id, "outbox")
            self._run("WRITE_AUDIT", [outbox], self._audit_args([entry], target="outbox"))

    def list_audit(
        self,
        *,
        user_id: str | None = None,
        event_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first (by ``at``, ties: the later write); ``since <= at < until``.

        Reads the stream newest first and stops at entries written more than
        :data:`AUDIT_CLOCK_SKEW` before ``since`` (or before the ``limit``-th best ``at`` found):
        a report over recent events reads recent entries only.
        """
        if limit <= 0:
            return []
        if self._cluster:
            for user in self._scan_users("outbox", "list"):
                self._move_outbox(self._keys.user(user, "outbox"))
        found: list[tuple[float, tuple[int, int], AuditEvent]] = []
        seen: set[str] = set()
        floor = since
        for entry_id, raw in self._newest_first(self._keys.audit()):
            position = _stream_position(entry_id)
            if floor is not None and position[0] < (floor - AUDIT_CLOCK_SKEW) * 1000:
                break  # written too long before ``floor`` to be stamped at or after it
            event, eid = _event_from_json(raw)
            if eid is not None and eid in seen:
                continue  # a cluster outbox moved twice (crash between copy and removal)
            seen.add(eid or "")
            if _matches(event, user_id, event_prefix, since, until):
                found.append((event.at, position, event))
            if len(found) >= 2 * limit:
                found = _best(found, limit)
                floor = found[-1][0] if floor is None else max(floor, found[-1][0])
        return [event for _, _, event in _best(found, limit)]

    def _newest_first(self, stream: str) -> Iterator[tuple[bytes, bytes]]:
        end = "+"
        while True:
            chunk = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self._read(stream, lambda top=end: self._client.xrevrange(  # type: ignore[misc]
                    stream, max=top, min="-", count=_CHUNK)),
            )  # fmt: skip
            for entry_id, fields in chunk:
                yield entry_id, fields[b"e"]
            if len(chunk) < _CHUNK:
                return
            end = "(" + chunk[-1][0].decode()


def _best(
    found: list[tuple[float, tuple[int, int], AuditEvent]], limit: int
) -> list[tuple[float, tuple[int, int], AuditEvent]]:
    return sorted(found, key=lambda item: (item[0], item[1]), reverse=True)[:limit]


def _sentinel_master(url: str, service: str, timeouts: dict[str, Any]) -> redis.Redis:
    """``Sentinel(...).master_for(service)`` from ``redis://[[user]:pw@]h1:p1,h2:p2/db``."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes: list[tuple[str, int]] = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        nodes.append((host.strip("[]"), int(port or 26379)))
    db = int(parts.path.strip("/") or 0)
    # redis-py before 8 leaves Sentinel untyped, 8 types it: the ignore must hold for both.
    sentinels = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
        nodes,
        sentinel_kwargs={k: timeouts[k] for k in ("socket_timeout", "socket_connect_timeout")},
        **timeouts,
    )
    tls: dict[str, Any] = (
        {"connection_class": SentinelManagedSSLConnection} if parts.scheme == "rediss" else {}
    )
    master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call, unused-ignore]
        service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        **tls,
        **timeouts,
    )
    return master

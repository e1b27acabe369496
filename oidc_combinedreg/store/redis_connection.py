"""The Redis store's connection: the client, failing closed, scripts, and a cluster's failovers.

:class:`RedisConnection` is the base of the store's parts (redis_audit.py, redis_ephemeral.py,
redis_methods.py; joined in redis.py): every call to Redis goes through :meth:`_guard`
(any redis-py error becomes ``StoreUnavailable``), :meth:`_read` or :meth:`_run` (a read, or a
script, sent once more on a cluster when a failover moved its slot: see store/redis.py's
docstring, "Fail closed, quickly"), or :meth:`_read_command`; on one server a script and the hot
reads go straight through the thread's connection (:meth:`_send`).
"""

from __future__ import annotations

import codecs
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self, TypeAlias, TypeVar, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedSSLConnection

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store import request_reads
from oidc_combinedreg.store.redis_layout import RedisKeys
from oidc_combinedreg.store.session_plan import SessionPlans
from oidc_combinedreg.store.sqlite_lock import fork_generation

_pack_in_c: Callable[[Any], bytes] | None
try:  # the redis extra's hiredis: a command packed in C, not one Python call per argument
    from hiredis import pack_command as _pack_in_c
except ImportError:  # pragma: no cover - redis-py without hiredis: its own packer
    _pack_in_c = None

RedisClient: TypeAlias = "redis.Redis | RedisCluster"
_T = TypeVar("_T")
#: what a command failed with, as the store sees it: ``StoreUnavailable`` (see ``_guard``)
_FAILED = (RedisError, RedisClusterException, OSError)
#: a command's parts, as ``send_packed_command`` wants them (see ``_packer``)
Packer: TypeAlias = "Callable[[tuple[str | bytes | int, ...]], list[bytes]]"

#: audit events older than this (seconds, by the store's clock at write time) are trimmed
DEFAULT_AUDIT_RETENTION = 400 * 86400.0
#: at most this many events are kept (about 250 bytes each): a cap on memory if events flood in
DEFAULT_AUDIT_MAXLEN = 2_000_000
#: how many keys (SCAN) or stream entries (XREVRANGE) one round trip asks for
CHUNK = 1000
#: a cluster's slot map is read again after a failed call at most this often (seconds)
_MAP_READ_EVERY = 0.25
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def pipe_eval(pipe: Any, script: str, key: str, *args: str | int) -> None:
    """Queue a one-key script. EVAL with the text, not EVALSHA: a pipeline cannot recover from
    NOSCRIPT (a restarted server), and the server caches the compiled script by its digest anyway.
    ``execute_command``, because redis-py's cluster pipeline has no ``eval``."""
    pipe.execute_command("EVAL", script, 1, key, *args)


class RedisConnection:
    """What every part of :class:`~oidc_combinedreg.store.redis.RedisStore` talks to Redis through
    (the constructor's parameters are described there)."""

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
        self._given = client
        #: per thread (and process): a client holding one connection of ``client``'s pool
        self._own = threading.local()
        self._clock = clock
        self._retention = audit_retention
        self._maxlen = audit_maxlen
        self._grace = lookup_grace
        self._closed = False
        self._cluster = isinstance(client, RedisCluster)
        self._keys = RedisKeys(key_prefix, cluster=self._cluster)
        #: per thread: what the open ``transaction()`` block may take back (cluster only)
        self._tx = threading.local()
        #: per thread: the open block's planned session save (one server only)
        self._plans = SessionPlans()
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
    ) -> Self:
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
        return f"RedisStore({type(self._given).__name__}, key_prefix={self._keys.prefix!r})"

    @property
    def client(self) -> RedisClient:
        """The redis-py client (for checks of the server: store/redis_persistence.py)."""
        return self._given

    @property
    def _client(self) -> RedisClient:
        """The client this thread sends through. On one server (or Sentinel's master): a client
        of the thread's own that holds one connection of the given client's pool for the
        thread's life. Through the pool itself, every command takes a connection out and puts
        it back (the pool's lock and its bookkeeping, about 8 us of CPU here): 90 of the
        1479 Python calls of an MFA verify on Redis (three commands).

        Before each command the held connection is checked as the pool checks one it hands
        out: data waiting before anything was sent means the server closed it (a restart) or
        a stray reply: it is opened again first, so a restarted server costs no failed
        request. A connection whose command failed is closed by redis-py and opened again at
        the next command; a forked child makes its own (the parent's socket is not its to use:
        ``fork_generation``); a thread's client gives its connection back to the pool when the
        thread ends. A cluster's client routes each command to its node: used as is.
        """
        if self._cluster:
            return self._given
        own = self._own
        if not self._closed and getattr(own, "generation", None) == fork_generation():
            client = cast(redis.Redis, own.client)
            conn = cast(redis.Connection, client.connection)
            try:
                if not conn.can_read():  # the usual case: no context manager per command
                    return client
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass  # closed after a failed command, and not reachable now: opened below
        with self._guard():  # connecting may fail: StoreUnavailable, as a command's failure
            if getattr(own, "generation", None) != fork_generation():
                given = cast(redis.Redis, self._given)
                own.client = redis.Redis(
                    connection_pool=given.connection_pool, single_connection_client=True
                )
                own.pack = _packer(own.client.connection)
                own.generation = fork_generation()
                return cast(redis.Redis, own.client)  # connected by its constructor
            client = cast(redis.Redis, own.client)
            conn = cast(redis.Connection, client.connection)
            conn.disconnect()  # type: ignore[no-untyped-call]
            conn.connect()  # type: ignore[no-untyped-call]
        return client

    def _send(self, *args: str | bytes | int) -> Any:
        """One command on one server, on this thread's connection (:attr:`_client`); redis-py's
        errors as they come (the caller turns them into ``StoreUnavailable``).

        With the store's own settings (no retries: ``from_url``; redis-py 6 or later) it goes
        straight through the connection's public API, ``send_packed_command`` then
        ``read_response``, packed by hiredis at once: what ``Redis.execute_command`` does for
        these commands (no reply callback but ``HGETALL``'s: see :meth:`_read_command`) without
        its layers (the retry loop, a lock, metrics, the encoder's Python calls per argument):
        18 Python calls for a command, against 91 for an ``HGET`` and 544 for an ``EVALSHA`` of
        41 keys and arguments (decision 214). A failed command leaves its connection closed as
        there (``_client`` opens it again at the next command); a client given with retries,
        or another kind of connection (client-side caching), keeps ``execute_command``."""
        client: Any = self._client  # redis-py's methods here are untyped
        pack: Packer | None = self._own.pack
        if pack is None:
            return client.execute_command(*args)
        conn = client.connection
        try:
            conn.send_packed_command(pack(args))
            return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()  # as redis-py's retry does when it gives up (it has done so already)
            raise
        finally:
            if conn.should_reconnect():  # a server's maintenance notice (RESP3), as redis-py
                conn.disconnect()
                conn.connect()

    def _read_command(self, key: str, *args: str | bytes | int) -> Any:
        """A read of ``key`` (see :meth:`_read`) by one command, on one server through
        :meth:`_send`: its reply as the server sent it, without redis-py's reply callback (none
        for ``GET``, ``HGET``, ``HMGET``; ``HGETALL``'s: ``redis_layout.hash_replies``)."""
        if self._cluster:
            cluster: Any = self._client
            return self._read(key, lambda: cluster.execute_command(*args))
        try:
            return self._send(*args)
        except _FAILED as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"Redis store: {type(exc).__name__}: {exc}")

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Any failure to talk to Redis becomes ``StoreUnavailable``: callers fail closed."""
        if self._closed:
            raise StoreUnavailable(f"{self!r} is closed")
        try:
            yield
        except _FAILED as exc:
            raise self._unavailable(exc) from exc

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
        request_reads.drop(self)  # a change, or a session's new load
        if not self._cluster:
            try:
                try:
                    return self._send("EVALSHA", code.sha, len(keys), *keys, *args)
                except NoScriptError:
                    return self._send("EVAL", cast(str, code.script), len(keys), *keys, *args)
            except _FAILED as exc:
                raise self._unavailable(exc) from exc

        def run() -> Any:
            try:
                return self._client.evalsha(code.sha, len(keys), *keys, *args)
            except NoScriptError:
                return self._client.eval(cast(str, code.script), len(keys), *keys, *args)

        return self._moved_once(keys[0], run, writes=True)

    def _scan_users(self, part: str, kind: str) -> set[str]:
        head, tail = self._keys.user_pattern(part)
        pattern = head.translate(_GLOB_SPECIAL) + "*" + tail.translate(_GLOB_SPECIAL)

        def scan() -> list[str]:
            found = self._client.scan_iter(match=pattern, count=CHUNK, _type=kind)
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

    def serialized(self) -> bool:
        return False  # other clients' commands run between a block's calls

    def close(self) -> None:
        self._closed = True
        if isinstance(self._given, RedisCluster):
            # RedisCluster.close() leaves the nodes' pools (made by the client) connected
            self._given.disconnect_connection_pools()  # type: ignore[no-untyped-call]
        # The pool's every connection, the threads' held ones too (they connect again only
        # through a store that is open).
        self._given.close()


def _packer(conn: Any) -> Packer | None:
    """How :meth:`RedisConnection._send` packs this thread's commands, or None: through
    ``execute_command`` (a client made with retries keeps them; any connection but redis-py's
    socket ones, such as client-side caching's proxy, keeps its own path; so does redis-py
    before 6, which can tell neither a connection's retries nor its maintenance reconnect)."""
    if not isinstance(conn, AbstractConnection) or not hasattr(conn, "should_reconnect"):
        return None
    retries = getattr(conn.retry, "get_retries", None)
    if retries is None or retries() != 0:
        return None
    encoder = conn.encoder
    utf8 = codecs.lookup(encoder.encoding).name == "utf-8" and encoder.encoding_errors == "strict"
    if _pack_in_c is not None and utf8:
        pack_in_c = _pack_in_c  # as the encoder: text as strict UTF-8, bytes as they are
        return lambda args: [pack_in_c(args)]
    pack: Any = conn.pack_command  # untyped in redis-py
    return lambda args: list(pack(*args))  # its encoder's way


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

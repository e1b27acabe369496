"""Does the Redis server keep what it is told across a restart? Checked at start-up and by
``combinedreg check-config`` (docs/redis.md, "Persistence").

Without persistence (``save ""`` and ``appendonly no``) a restart forgets every registered method,
the used TOTP steps (a replay window) and the lockout counters, and nothing says so. The server
is asked ``CONFIG GET appendonly`` and ``CONFIG GET save``; where ``CONFIG`` is renamed away or an
ACL forbids it (managed services), ``INFO persistence`` still tells whether AOF is on, but not
whether RDB snapshots are configured: then the answer is "cannot tell". A Redis Cluster is asked
node by node (every primary), a Sentinel deployment through its current master.

What follows is the config's ``[storage.redis] allow_no_persistence`` and the environment
(:class:`~oidc_combinedreg.config.model.NoPersistence`): refuse to start in production, warn in
development, say nothing when the operator declared it intended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..config.model import NoPersistence, RedisConfig
from ..exceptions import ConfigError, ConfigProblem

__all__ = ["NodePersistence", "check_persistence", "persistence_problem", "server_persistence"]

log = logging.getLogger("oidc_combinedreg.store")

_WHERE = "storage.redis.url"


@dataclass(frozen=True, slots=True)
class NodePersistence:
    node: str
    #: True: AOF or RDB snapshots; False: neither; None: cannot tell (CONFIG refused, no AOF)
    persistent: bool | None
    #: what the server said, for the message
    detail: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ask(client: Any, node: str) -> NodePersistence:
    try:
        appendonly = _text(client.config_get("appendonly").get("appendonly", "no"))
        save = _text(client.config_get("save").get("save", ""))
    except ResponseError as exc:  # CONFIG renamed away, or NOPERM for this ACL user
        info = client.info("persistence")
        if int(info.get("aof_enabled", 0)) == 1:
            return NodePersistence(node, True, "INFO persistence: aof_enabled:1")
        return NodePersistence(
            node,
            None,
            f"CONFIG refused ({_text(exc).splitlines()[0]}) and INFO persistence says "
            "aof_enabled:0; RDB snapshots cannot be seen without CONFIG",
        )
    if appendonly == "yes":
        return NodePersistence(node, True, "appendonly yes")
    if save.strip():
        return NodePersistence(node, True, f"RDB snapshots only (save {save!r}, appendonly no)")
    return NodePersistence(node, False, "save '' and appendonly no")


def server_persistence(client: Any) -> list[NodePersistence]:
    """Every node that holds data: one server, or each primary of a cluster. Raises the
    client's connection errors (the caller decides what an unreachable server means)."""
    primaries = getattr(client, "get_primaries", None)
    if primaries is not None:  # RedisCluster
        return [_ask(client.get_redis_connection(n), n.name) for n in primaries()]
    pool = client.connection_pool
    service = getattr(pool, "service_name", None)  # Sentinel: whichever server is master now
    kwargs = pool.connection_kwargs
    node = (
        f"master {service!r}"
        if service
        else kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    )
    return [_ask(client, str(node))]


def persistence_problem(config: RedisConfig, client: Any) -> ConfigProblem | None:
    """The error (production) or warning (development) for a server that may forget, or None."""
    if config.no_persistence is NoPersistence.ALLOW:
        return None
    try:
        nodes = server_persistence(client)
    except (RedisError, RedisClusterException, OSError) as exc:
        return ConfigProblem(
            _WHERE,
            f"could not check the server's persistence ({type(exc).__name__}: {exc}); "
            "it is checked again at start",
            severity="warning",
        )
    lacking = [n for n in nodes if n.persistent is not True]
    if not lacking:
        return None
    said = "; ".join(f"{n.node}: {n.detail}" for n in lacking)
    message = (
        "expected a Redis that keeps its data across a restart (appendonly yes, see "
        f"docs/redis.md), got {said}: a restart would forget every registered method, the used "
        "TOTP steps and the lockout counters. If that is intended (a disposable test server), "
        "set [storage.redis] allow_no_persistence = true"
    )
    if config.no_persistence is NoPersistence.REFUSE:
        return ConfigProblem(_WHERE, message)
    return ConfigProblem(_WHERE, message, severity="warning")


def check_persistence(config: RedisConfig, client: Any) -> None:
    """At start-up: raise :class:`ConfigError` for the error, log the warning."""
    problem = persistence_problem(config, client)
    if problem is None:
        return
    if problem.severity == "error":
        raise ConfigError([problem])
    log.warning("%s", problem)

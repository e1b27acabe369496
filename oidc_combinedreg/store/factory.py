"""Open the store the config names (SQLite by default, Redis or PostgreSQL for many workers and
hosts)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..clock import Clock
from ..config.model import StorageConfig
from ..exceptions import ConfigError, ConfigProblem
from .base import Store

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = ["open_store", "redis_problems", "sqlite_path_problem"]

_TRUE = ("1", "yes", "true", "on")


def sqlite_path_problem(path: str) -> str | None:
    """Why the middleware cannot run on this ``[storage.sqlite] path`` (None: it can).

    One rule for ``check-config`` and for the start, so that a path the check passes opens. The
    middleware writes on every sign-in (sessions, counters, used codes): a read-only ``file:``
    URI (``mode=ro``, ``immutable=1``) would start and then answer 503 to everyone, and an
    in-memory database would be a different empty one per pooled connection. ``SqliteStore``
    itself still opens ``mode=ro`` for a reporting copy (docs/storage.md).
    """
    memory = "expected a database file (an in-memory database is empty on every connection)"
    if path in ("", ":memory:"):
        return memory
    if not path.startswith("file:"):
        return None
    query = parse_qs(urlsplit(path).query)  # SQLite's URI parameters (sqlite.org/uri.html)
    mode = query.get("mode", [""])[-1].lower()
    if mode == "memory":
        return memory
    if mode == "ro" or query.get("immutable", ["0"])[-1].lower() in _TRUE:
        return (
            f"expected a database the IdP can write, got {path!r}: mode=ro and immutable=1 "
            "are for a reporting copy opened with SqliteStore directly"
        )
    return None


def open_store(config: StorageConfig, *, clock: Clock, check: bool = True) -> Store:
    """The configured store. On Redis, ``check``: the server's persistence is checked first
    (a :class:`ConfigError` in production for a server that forgets on restart, a warning in
    development; store/redis_persistence.py); an unreachable server is checked at no cost
    here and fails closed at the first request."""
    if config.backend == "redis":
        store = _open_redis(config, clock)
        if check:
            from .redis_persistence import check_persistence

            assert config.redis is not None
            try:
                check_persistence(config.redis, store.client)
            except BaseException:
                store.close()
                raise
        return store
    if config.backend == "postgres":
        return _open_postgres(config, clock)
    from .sqlite import SqliteStore

    problem = sqlite_path_problem(config.sqlite_path)
    if problem is not None:
        raise ConfigError([ConfigProblem("storage.sqlite.path", problem)])
    return SqliteStore(
        config.sqlite_path,
        clock=clock,
        busy_timeout=config.busy_timeout,
        synchronous=config.sqlite_synchronous,
    )


def redis_problems(config: StorageConfig, *, clock: Clock) -> list[ConfigProblem]:
    """For ``check-config``: what the Redis server says about its persistence (nothing for
    SQLite). An unreachable server is a warning: the check runs again at start."""
    if config.backend != "redis" or config.redis is None:
        return []
    from .redis_persistence import persistence_problem

    store = _open_redis(config, clock)
    try:
        problem = persistence_problem(config.redis, store.client)
    finally:
        store.close()
    return [] if problem is None else [problem]


def _open_redis(config: StorageConfig, clock: Clock) -> RedisStore:
    # Imported here so a SQLite deployment never loads redis-py.
    from .redis import RedisStore

    assert config.redis is not None  # the config reader requires [storage.redis]
    r = config.redis
    return RedisStore.from_url(
        r.url,
        clock=clock,
        cluster=r.cluster,
        sentinel=r.sentinel,
        socket_timeout=r.socket_timeout,
        connect_timeout=r.connect_timeout,
        key_prefix=r.key_prefix,
        audit_retention=r.audit_retention_days * 86400.0,
        audit_maxlen=r.audit_maxlen,
    )


def _open_postgres(config: StorageConfig, clock: Clock) -> Store:
    # Imported here so other deployments never load psycopg.
    from .postgres import PostgresStore

    assert config.postgres is not None  # the config reader makes one for backend = "postgres"
    p = config.postgres
    return PostgresStore(
        p.dsn,
        clock=clock,
        min_size=p.min_connections,
        max_size=p.max_connections,
        pool_timeout=p.pool_timeout,
        connect_timeout=p.connect_timeout,
        statement_timeout=p.statement_timeout,
        migrate=p.migrate_at_start,
    )

"""Open the store the config names (SQLite by default, Redis for many workers and hosts)."""

from __future__ import annotations

from ..clock import Clock
from ..config.model import StorageConfig
from .base import Store

__all__ = ["open_store"]


def open_store(config: StorageConfig, *, clock: Clock) -> Store:
    if config.backend == "redis":
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
    from .sqlite import SqliteStore

    return SqliteStore(
        config.sqlite_path,
        clock=clock,
        busy_timeout=config.busy_timeout,
        synchronous=config.sqlite_synchronous,
    )

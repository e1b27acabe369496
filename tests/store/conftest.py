"""The ``store`` fixture: every contract test runs once per backend.

To add a backend, append a factory to ``BACKENDS``. A factory gets the pytest request (to reach
other fixtures, e.g. ``request.getfixturevalue("redis_server")``) and the test's FrozenClock, and
returns an open, empty store; the fixture closes it after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_servers import PostgresServer
from redis_servers import RedisCluster3, RedisServer, require_redis

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store import MemoryStore, SqliteStore, Store
from oidc_combinedreg.store.postgres import PostgresStore
from oidc_combinedreg.store.redis import RedisStore

Factory = Callable[[pytest.FixtureRequest, FrozenClock], Store]


def _sqlite(request: pytest.FixtureRequest, clock: FrozenClock) -> Store:
    tmp_path = request.getfixturevalue("tmp_path")
    return SqliteStore(str(tmp_path / "store.db"), clock=clock)


def _memory(request: pytest.FixtureRequest, clock: FrozenClock) -> Store:
    return MemoryStore(clock=clock)


def _redis(request: pytest.FixtureRequest, clock: FrozenClock) -> RedisStore:
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return RedisStore.from_url(server.url, clock=clock)


def _redis_cluster(request: pytest.FixtureRequest, clock: FrozenClock) -> RedisStore:
    cluster: RedisCluster3 = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return RedisStore.from_url(cluster.url, clock=clock, cluster=True)


def _postgres(request: pytest.FixtureRequest, clock: FrozenClock) -> PostgresStore:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    store = PostgresStore(server.dsn, clock=clock, max_size=8)
    server.truncate()
    return store


REDIS_BACKENDS = [
    pytest.param(_redis, id="redis"),
    pytest.param(_redis_cluster, id="redis-cluster"),
]
BACKENDS = [
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_memory, id="memory"),
    *REDIS_BACKENDS,
    pytest.param(_postgres, id="postgres"),
]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session; the store factory flushes it per test."""
    require_redis()
    server = RedisServer(Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (database ``creg``); the store factory
    empties its tables per test."""
    server = PostgresServer().start()
    server.create_database("creg")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster3]:
    """A real 3-node Redis Cluster on loopback, for the session."""
    require_redis()
    cluster = RedisCluster3(Path(tmp_path_factory.mktemp("redis-cluster"))).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000.0)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, clock: FrozenClock) -> Iterator[Store]:
    factory: Factory = request.param
    backend = factory(request, clock)
    yield backend
    backend.close()


@pytest.fixture(params=REDIS_BACKENDS)
def redis_store(request: pytest.FixtureRequest, clock: FrozenClock) -> Iterator[RedisStore]:
    """The Redis-specific tests: one server and the cluster, flushed per test."""
    backend: RedisStore = request.param(request, clock)
    yield backend
    backend.close()

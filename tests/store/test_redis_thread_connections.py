"""The Redis store's connections: one held per thread and process (store/redis_connection.py,
``RedisConnection._client``), not one taken out of the pool and put back per command."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_servers import RedisServer

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.redis import RedisStore


class TakesCounted(redis.ConnectionPool):
    """A pool that counts how often a connection is taken out of it."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)
        self.taken = 0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.taken += 1
        return super().get_connection(*args, **kwargs)


@pytest.fixture
def pooled(
    redis_server: RedisServer, clock: FrozenClock
) -> Iterator[tuple[RedisStore, TakesCounted]]:
    redis_server.flush()
    pool = TakesCounted(redis_server.port)
    store = RedisStore(redis.Redis(connection_pool=pool), clock=clock)
    yield store, pool
    store.close()
    pool.disconnect()


def client_id(store: RedisStore) -> int:
    """The server's id of the connection this thread's store calls go through."""
    return int(store._client.client_id())  # type: ignore[union-attr]


def test_a_thread_takes_one_connection_from_the_pool_for_all_its_commands(
    pooled: tuple[RedisStore, TakesCounted],
) -> None:
    store, pool = pooled
    store.save_session("sid-1", {"n": 1}, user_id="alice", ttl=60)
    taken = pool.taken
    for _ in range(5):  # the verify's kind of calls: the session, the method, a script
        assert store.load_session("sid-1") is not None
        assert store.get_method("alice", "none") is None
        store.save_session("sid-1", {"n": 2}, user_id="alice", ttl=60)
    assert pool.taken == taken  # through the pool each command took one: 15 more


def test_threads_use_connections_of_their_own_and_give_them_back_when_they_end(
    pooled: tuple[RedisStore, TakesCounted],
) -> None:
    store, pool = pooled
    mine = client_id(store)
    seen: list[int] = []

    def work() -> None:
        store.save_session("sid-2", {"t": 1}, user_id="bob", ttl=60)
        seen.append(client_id(store))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen and seen[0] != mine
    assert client_id(store) == mine  # this thread keeps its own
    # The ended thread's client was dropped with its thread-local: its connection is idle in
    # the pool again, not held for ever (a server with many short threads would run out).
    assert len(pool._available_connections) >= 1


def test_a_forked_child_talks_through_a_connection_of_its_own(
    pooled: tuple[RedisStore, TakesCounted],
) -> None:
    store, _ = pooled
    parent = client_id(store)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: gunicorn's worker after a preloaded app
        code = 1
        try:
            store.save_session("sid-3", {"child": 1}, user_id="carol", ttl=60)
            os.write(write, str(client_id(store)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        child = int(answer.read() or "0")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child not in (0, parent)  # the parent's socket shared would interleave replies
    assert client_id(store) == parent
    assert store.load_session("sid-3") == {"child": 1}


def test_a_server_that_cannot_be_reached_is_store_unavailable_on_a_new_thread(
    clock: FrozenClock,
) -> None:
    # The thread's client connects when it is made: outside a command, still failing closed.
    store = RedisStore.from_url("redis://127.0.0.1:1/0", clock=clock)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.load_session("sid")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable)
    store.close()

"""The Redis store's reads kept for one request of the middleware (store/request_reads.py,
decision 216): on one server a session's load inside the scope brings its user's methods and
state in the same round trip, and the request's reads of that user are answered from them,
until a write through the store or the end of the request. What a user would notice must not
change: every answer is the server's, a change made in the request is seen by the rest of it, a
change made elsewhere by the next request; outside a scope and on a cluster, reads are as before.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis_servers import CountingPool, RedisServer, script_names
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import UserState, request_reads
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store.redis import RedisStore

LOAD = b"EVALSHA LOAD_SESSION_READS"


@pytest.fixture
def counted(redis_server: RedisServer, clock: FrozenClock) -> Iterator[tuple[RedisStore, list]]:
    """A store on one server whose round trips are recorded (scripts loaded beforehand)."""
    redis_server.flush()
    pool = CountingPool(redis_server.port, scripts=script_names(lua))
    client = redis.Redis(connection_pool=pool)
    for name in lua.__all__:
        client.script_load(getattr(lua, name))
    backend = RedisStore(client, clock=clock)
    yield backend, pool.sent
    backend.close()
    pool.disconnect()


@pytest.fixture
def other(redis_server: RedisServer, clock: FrozenClock) -> Iterator[RedisStore]:
    """Another process's store on the same server (an admin, another worker)."""
    backend = RedisStore.from_url(redis_server.url, clock=clock)
    yield backend
    backend.close()


@pytest.fixture
def scope() -> Iterator[None]:
    with request_reads.scope():
        yield


def _alice(store: RedisStore) -> tuple[str, str]:
    first, second = method(), method(kind=MethodKind.EMAIL)
    store.add_method(first, limit=5)
    store.add_method(second, limit=5)
    store.put_user_state(UserState(user_id="alice", default_method_id=second.id, skips_used=2))
    store.save_session("s.alice", {"uid": "alice"}, user_id="alice", ttl=600)
    return first.id, second.id


def test_a_load_in_a_scope_brings_the_users_methods_and_state(
    counted: tuple[RedisStore, list[bytes]],
) -> None:
    store, sent = counted
    first, second = _alice(store)
    expected = (store.list_methods("alice"), store.get_user_state("alice"))  # the server's
    with request_reads.scope():
        sent.clear()
        assert store.load_session("s.alice") == {"uid": "alice"}
        assert sent == [LOAD]

        assert (store.list_methods("alice"), store.get_user_state("alice")) == expected
        assert store.get_method("alice", first) == expected[0][0]
        assert store.get_method("alice", second) == expected[0][1]
        assert store.get_method("alice", "no-such-method") is None
        assert store.get_method("alice", "\ud800") is None  # a lone surrogate (JSON): no 500
        assert sent == [LOAD], "answered from the load's reply"


def test_outside_a_scope_each_read_is_a_round_trip(counted: tuple[RedisStore, list[bytes]]) -> None:
    store, sent = counted
    first, _ = _alice(store)
    sent.clear()

    assert store.load_session("s.alice") == {"uid": "alice"}
    assert store.get_method("alice", first) is not None
    assert store.get_user_state("alice").skips_used == 2

    assert sent == [b"HMGET", b"HGET", b"GET"]


def test_a_write_through_the_store_is_seen_by_the_rest_of_the_request(
    counted: tuple[RedisStore, list[bytes]], scope: None
) -> None:
    store, _ = counted
    first, second = _alice(store)
    store.load_session("s.alice")

    added = method()
    store.add_method(added, limit=5, events=[event()])
    assert [m.id for m in store.list_methods("alice")] == [first, second, added.id]

    store.load_session("s.alice")
    assert store.advance_counter("alice", first, 7, T0 + 1) is True
    assert store.get_method("alice", first).counter == 7  # type: ignore[union-attr]

    store.load_session("s.alice")
    store.put_user_state(UserState(user_id="alice", skips_used=3))
    assert store.get_user_state("alice").skips_used == 3

    store.load_session("s.alice")
    assert store.delete_method("alice", added.id) is True
    assert store.get_method("alice", added.id) is None


def test_a_change_made_elsewhere_is_seen_by_the_next_request(
    counted: tuple[RedisStore, list[bytes]], other: RedisStore
) -> None:
    store, _ = counted
    first, _ = _alice(store)
    with request_reads.scope():
        store.load_session("s.alice")
        assert other.delete_method("alice", first) is True
        # The request answers as of its load, as when it read the method just before the
        # change: the write that would use it finds it gone (tests/web/test_web_redis_round_trips.py).
        assert store.get_method("alice", first) is not None

    assert store.get_method("alice", first) is None
    with request_reads.scope():
        store.load_session("s.alice")
        assert store.get_method("alice", first) is None
        assert request_reads.kept() is not None
    assert request_reads.kept() is None


def test_only_the_sessions_user_is_answered_from_the_load(
    counted: tuple[RedisStore, list[bytes]], scope: None
) -> None:
    store, sent = counted
    first, _ = _alice(store)
    store.load_session("s.alice")
    sent.clear()

    assert store.get_method("bob", first) is None  # alice's method id, asked as bob's: the server's
    assert store.list_methods("bob") == []
    assert sent == [b"HGET", b"HGETALL"]


def test_an_anonymous_or_ended_session_keeps_nothing(
    counted: tuple[RedisStore, list[bytes]], clock: FrozenClock, scope: None
) -> None:
    store, sent = counted
    first, _ = _alice(store)
    store.save_session("s.anon", {"step": 1}, user_id=None, ttl=600)
    assert store.load_session("s.anon") == {"step": 1}
    sent.clear()
    assert store.get_method("alice", first) is not None
    assert sent == [b"HGET"]

    clock.advance(601)  # alice's session ended by the store clock (its key not yet expired)
    assert store.load_session("s.alice") is None
    sent.clear()
    assert store.get_method("alice", first) is not None
    assert sent == [b"HGET"]


def test_answers_in_a_scope_are_the_servers_on_every_deployment(
    redis_store: RedisStore, scope: None
) -> None:
    """One server and a cluster (whose slots the load's script may not cross: it loads the
    session alone there, and each read is its own round trip, as before)."""
    first, second = _alice(redis_store)

    assert redis_store.load_session("s.alice") == {"uid": "alice"}
    found = redis_store.get_method("alice", second)
    assert found is not None and found.kind.value == "email"
    assert [m.id for m in redis_store.list_methods("alice")] == [first, second]
    assert redis_store.get_user_state("alice").default_method_id == second

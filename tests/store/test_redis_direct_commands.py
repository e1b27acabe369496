"""The Redis store's commands on one server (``RedisConnection._send``): with the store's own
settings (``from_url``: no retries) they go straight through the thread's connection
(``send_packed_command``, then ``read_response``, packed by hiredis), not through
``Redis.execute_command``'s layers; a client given with retries keeps redis-py's own path. What
the store's connection guarantees holds on that path: a refused command (an error reply) leaves
the connection as it was, a script the server does not know is sent once more in full, a
restarted server costs no failed request (and test_redis_faults.py: fail closed while down)."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_servers import RedisServer
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import UserState
from oidc_combinedreg.store.redis import RedisStore

STEP = 56_666_666
CHECKS = [("fail:user:alice:consecutive", 100, "account-locked"),
          ("fail:user:alice:window", 10, "user"), ("fail:ip:-", 50, "ip")]  # fmt: skip


@pytest.fixture
def store(redis_server: RedisServer, clock: FrozenClock) -> Iterator[RedisStore]:
    redis_server.flush()
    backend = RedisStore.from_url(redis_server.url, clock=clock)
    yield backend
    backend.close()


@pytest.fixture
def through_execute_command(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the commands sent through ``Redis.execute_command`` from now on."""
    sent: list[str] = []
    original = redis.Redis.execute_command

    def spy(self: redis.Redis, *args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", spy)
    return sent


def verify_commands(store: RedisStore) -> Callable[[], object]:
    """The store calls of an MFA verify (the session, the method, the checked advance), for a
    fresh method each time (so the advance succeeds)."""
    store.save_session("sess.one", {"uid": "alice"}, user_id="alice", ttl=600)

    def run() -> object:
        record = method()
        store.add_method(record, limit=1000)
        assert store.load_session("sess.one") == {"uid": "alice"}
        assert store.get_method("alice", record.id) is not None
        done = store.advance_counter_checked(
            "alice", record.id, STEP, T0, checks=CHECKS, events=[event("mfa.succeeded")],
            reset=[key for key, _, _ in CHECKS[:2]],
        )  # fmt: skip
        assert done is True
        return done

    return run


def python_calls(action: Callable[[], object], times: int = 20) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(times):
        action()
    profile.disable()
    return pstats.Stats(profile).total_calls / times  # type: ignore[attr-defined, no-any-return]


def test_the_verifys_commands_do_not_go_through_execute_command(
    store: RedisStore, through_execute_command: list[str]
) -> None:
    verify_commands(store)()
    assert through_execute_command == []


def test_a_sign_ins_reads_do_not_go_through_execute_command(
    store: RedisStore, through_execute_command: list[str]
) -> None:
    record = method(lookup="alice@example.org")
    store.add_method(record, limit=5)
    store.put_user_state(UserState(user_id="alice", skips_used=2))
    store.incr("fail:ip:-", ttl=60)
    store.put_challenge("challenge-1", {"n": 1}, ttl=60)  # a SET: redis-py's path
    through_execute_command.clear()
    assert store.list_methods("alice") == [record]
    assert store.get_user_state("alice").skips_used == 2
    assert store.get_count("fail:ip:-") == 1
    assert store.peek_challenge("challenge-1") == {"n": 1}
    assert store.find_method_by_lookup("alice@example.org") == record
    assert store.list_reported_methods("alice") == []
    assert through_execute_command == []


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_replies_read_the_same_in_resp2_and_resp3(
    redis_server: RedisServer, clock: FrozenClock, protocol: int
) -> None:
    """redis-py 8 speaks RESP3 unless told otherwise; a hash comes back as a map there and as
    fields and values in turn in RESP2 (``redis_layout.hash_replies``)."""
    redis_server.flush()
    client = redis.Redis(port=redis_server.port, protocol=protocol, retry=Retry(NoBackoff(), 0))
    store = RedisStore(client, clock=clock)
    try:
        assert int(store._client.connection.protocol) == protocol  # type: ignore[union-attr]
        first, second = method(), method(created_at=T0 + 1)
        store.add_method(first, limit=5)
        store.add_method(second, limit=5)
        store.put_user_state(UserState(user_id="alice", skips_used=2))
        store.save_session("sess.one", {"uid": "alice"}, user_id="alice", ttl=600)
        assert store.list_methods("alice") == [first, second]
        assert store.list_methods("nobody") == []
        assert store.get_user_state("alice").skips_used == 2
        assert store.load_session("sess.one") == {"uid": "alice"}
        assert store.get_method("alice", second.id) == second
        assert store.report_methods(UserState(user_id="alice"), [first.id], at=T0) == 1
        assert [m.id for m in store.list_reported_methods("alice")] == [first.id]
    finally:
        store.close()


def test_a_client_made_with_retries_keeps_redis_pys_own_path(
    redis_server: RedisServer, clock: FrozenClock, through_execute_command: list[str]
) -> None:
    """redis-py retries what ``execute_command`` sends; a client given with retries (redis-py's
    default) gets them, as before (``from_url`` makes none: a write is never sent twice)."""
    redis_server.flush()
    client = redis.Redis(port=redis_server.port)
    store = RedisStore(client, clock=clock)
    try:
        verify_commands(store)()
        assert {"HMGET", "HGET", "EVALSHA"} <= set(through_execute_command)
    finally:
        store.close()


def test_a_redis_py_that_cannot_tell_its_retries_keeps_its_own_path(
    redis_server: RedisServer,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    through_execute_command: list[str],
) -> None:
    """redis-py before 6 (pyproject allows 5) has no ``Retry.get_retries``: the store works
    through ``execute_command`` there, as before."""
    owner = next(cls for cls in Retry.__mro__ if "get_retries" in vars(cls))
    monkeypatch.delattr(owner, "get_retries")
    redis_server.flush()
    store = RedisStore.from_url(redis_server.url, clock=clock)
    try:
        verify_commands(store)()
        assert {"HMGET", "HGET", "EVALSHA"} <= set(through_execute_command)
    finally:
        store.close()


def test_the_store_calls_of_a_verify_cost_few_python_calls(store: RedisStore) -> None:
    """Through ``execute_command`` a command cost about 90 Python calls, and a script about ten
    more per argument (the encoder's): the verify's script of 35 over 400; sent directly about
    20 each, whatever the arguments (cProfile counts: what load on the machine does not move)."""
    run = verify_commands(store)
    run()  # the scripts loaded, the connection open
    record = method()
    store.add_method(record, limit=1000)
    # 61 and 60 here (141 and 154 through execute_command)
    assert python_calls(lambda: store.get_method("alice", record.id)) <= 80
    assert python_calls(lambda: store.load_session("sess.one")) <= 80
    # add_method (a script) and the verify's three, with the Python work around them: 282 (1001)
    assert python_calls(run) <= 400


def test_an_error_reply_fails_closed_and_leaves_the_connection_open(
    store: RedisStore, redis_server: RedisServer
) -> None:
    record = method()
    store.add_method(record, limit=5)
    before = int(store._client.client_id())  # type: ignore[union-attr]
    with redis_server.client() as raw:
        raw.set("creg:session:wrong-type", "a string, not a hash")
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        store.load_session("wrong-type")
    assert store.get_method("alice", record.id) == record
    assert int(store._client.client_id()) == before  # type: ignore[union-attr]


def test_a_script_the_server_lost_is_sent_in_full_once(
    store: RedisStore, redis_server: RedisServer
) -> None:
    record = method()
    store.add_method(record, limit=5)
    with redis_server.client() as raw:
        raw.script_flush()
    assert store.advance_counter("alice", record.id, STEP, T0) is True
    assert store.advance_counter("alice", record.id, STEP, T0) is False  # a replay
    assert store.get_method("alice", record.id).counter == STEP  # type: ignore[union-attr]


def test_a_restarted_server_costs_no_failed_request(tmp_path: Path, clock: FrozenClock) -> None:
    server = RedisServer(tmp_path / "redis").start()
    store = RedisStore.from_url(server.url, clock=clock)
    try:
        store.save_session("sess.one", {"uid": "alice"}, user_id="alice", ttl=600)
        assert store.load_session("sess.one") == {"uid": "alice"}
        server.kill()
        with pytest.raises(StoreUnavailable):
            store.load_session("sess.one")  # down: fails closed
        server.start()
        assert store.load_session("sess.one") is None  # back (empty: no persistence)
        server.kill()
        server.start()
        store.save_session("sess.two", {"uid": "bob"}, user_id="bob", ttl=600)
        assert store.load_session("sess.two") == {"uid": "bob"}
    finally:
        store.close()
        server.stop()

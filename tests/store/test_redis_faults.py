"""Redis only: faults. The tests own their redis-server processes and kill them (SIGKILL).

SECURITY.md 53: Redis down during OTP checks, rate limits or challenge lookups -> StoreUnavailable
(the web layer's 503), never a success. SECURITY.md 54: a restart loses what Redis did not write to
disk; with AOF the last used TOTP step and the lockout counters survive, so no replay.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_servers import RedisCluster3, RedisServer, require_redis
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import UserState
from oidc_combinedreg.store.redis import RedisStore

Start = Callable[..., RedisServer]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Start]:
    """Starts servers with extra arguments; every one is stopped after the test, failed or not."""
    require_redis()
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", extra=extra)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_redis: Start) -> RedisServer:
    return start_redis()


@pytest.fixture
def store(server: RedisServer, clock: FrozenClock) -> Iterator[RedisStore]:
    backend = RedisStore.from_url(server.url, clock=clock, socket_timeout=2, connect_timeout=2)
    yield backend
    backend.close()


def run_in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:  # asserted on by the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_blocked(server: RedisServer) -> None:
    """Until the server holds one client's command (paused by ``CLIENT PAUSE ... WRITE``)."""
    with server.client() as admin:
        for _ in range(500):
            if admin.info("clients")["blocked_clients"] >= 1:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the operation never reached the server")


# -- killed, then started again -------------------------------------------------------------------


def test_redis_killed_during_an_add_is_unavailable_and_the_store_recovers(
    server: RedisServer, store: RedisStore
) -> None:
    store.list_methods("alice")  # connected before the fault
    with server.client() as admin:
        admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    thread, outcome = run_in_thread(lambda: store.add_method(method(), limit=5, events=[event()]))
    wait_until_blocked(server)
    server.kill()
    thread.join(timeout=10)
    assert isinstance(outcome[0], StoreUnavailable), outcome
    server.start()  # same port, persistence off: empty
    record = method()
    store.add_method(record, limit=5, events=[event()])
    assert store.list_methods("alice") == [record]
    assert [e.event for e in store.list_audit()] == ["method.added"]


OPERATIONS: list[Any] = [
    pytest.param(lambda s: s.list_methods("alice"), id="listing methods"),
    pytest.param(lambda s: s.get_method("alice", "m1"), id="reading a method"),
    pytest.param(lambda s: s.find_method_by_lookup("cred"), id="finding a credential"),
    pytest.param(lambda s: s.add_method(method(), limit=5), id="adding a method"),
    pytest.param(lambda s: s.delete_method("alice", "m1"), id="deleting a method"),
    pytest.param(lambda s: s.advance_counter("alice", "m1", 9, T0), id="using a TOTP step"),
    pytest.param(lambda s: s.get_user_state("alice"), id="reading user state"),
    pytest.param(lambda s: s.put_user_state(UserState(user_id="a")), id="writing user state"),
    pytest.param(lambda s: s.load_session("sid"), id="loading a session"),
    pytest.param(lambda s: s.save_session("sid", {}, user_id="a", ttl=60), id="saving a session"),
    pytest.param(lambda s: s.delete_user_sessions("alice"), id="signing out everywhere"),
    pytest.param(lambda s: s.put_challenge("c", {}, ttl=60), id="storing a challenge"),
    pytest.param(lambda s: s.take_challenge("c"), id="taking a challenge"),
    pytest.param(lambda s: s.incr("fail:alice", ttl=None), id="counting a failure"),
    pytest.param(lambda s: s.get_count("fail:alice"), id="reading a lockout count"),
    pytest.param(lambda s: s.append_audit(event()), id="auditing"),
    pytest.param(lambda s: s.list_audit(), id="listing the audit log"),
    pytest.param(lambda s: s.list_user_ids(), id="listing users"),
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_fails_closed_while_redis_is_down(
    server: RedisServer, store: RedisStore, operation: Callable[[RedisStore], object]
) -> None:
    store.get_count("warm-up")
    server.kill()
    with pytest.raises(StoreUnavailable):
        operation(store)


# -- persistence (SECURITY.md 54) ---------------------------------------------------------------


def test_a_restart_without_persistence_loses_challenges_steps_and_lockouts(
    server: RedisServer, store: RedisStore
) -> None:
    """Why docs/redis.md asks for AOF: without it a restart forgets the used TOTP step too."""
    record = method(counter=100)
    store.add_method(record, limit=5)
    store.put_challenge("sms:alice", {"code_hash": "h"}, ttl=600)
    store.incr("fail:alice", ttl=None)
    server.restart()
    assert store.take_challenge("sms:alice") is None, "a pending challenge fails"
    assert store.get_method("alice", record.id) is None
    assert store.get_count("fail:alice") == 0


def test_with_aof_the_used_step_and_lockouts_survive_a_kill(
    start_redis: Start, clock: FrozenClock
) -> None:
    server = start_redis("--appendonly", "yes", "--appendfsync", "always")
    store = RedisStore.from_url(server.url, clock=clock)
    try:
        record = method(counter=100)
        store.add_method(record, limit=5, events=[event()])
        assert store.advance_counter("alice", record.id, 101, T0) is True
        for _ in range(3):
            store.incr("fail:alice", ttl=None)
        store.put_challenge("sms:alice", {"code_hash": "h"}, ttl=600)
        server.restart()  # SIGKILL, then the same directory: Redis replays the AOF
        assert store.advance_counter("alice", record.id, 101, T0) is False, "no replay"
        assert store.get_count("fail:alice") == 3, "the lockout count is kept"
        assert store.take_challenge("sms:alice") == {"code_hash": "h"}
        assert store.take_challenge("sms:alice") is None, "and it is still single use"
        assert [e.event for e in store.list_audit()] == ["method.added"]
    finally:
        store.close()


def test_a_flush_mid_flow_makes_the_pending_challenge_fail(
    server: RedisServer, store: RedisStore
) -> None:
    store.put_challenge("webauthn:alice", {"challenge": "c"}, ttl=300)
    server.flush()
    assert store.take_challenge("webauthn:alice") is None


# -- bounded timeouts -----------------------------------------------------------------------------


def call_with_bound(store: RedisStore) -> BaseException | None:
    """One store call in a thread; fails the test if it is still running after 10 s (a hang)."""
    thread, outcome = run_in_thread(lambda: store.incr("fail:alice", ttl=None))
    thread.join(timeout=10)
    assert not thread.is_alive(), "the call hung past its timeout"
    return outcome[0] if isinstance(outcome[0], BaseException) else None


def test_a_server_that_accepts_but_never_answers_times_out(clock: FrozenClock) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        store = RedisStore.from_url(url, clock=clock, socket_timeout=0.2, connect_timeout=0.2)
        error = call_with_bound(store)
        store.close()
    assert isinstance(error, StoreUnavailable) and "Timeout" in str(error)


def test_a_connection_that_is_never_accepted_times_out(clock: FrozenClock) -> None:
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        address = full.getsockname()
        fillers = [socket.create_connection(address, timeout=1)]  # fills the accept queue
        url = f"redis://127.0.0.1:{address[1]}/0"
        store = RedisStore.from_url(url, clock=clock, socket_timeout=0.2, connect_timeout=0.2)
        error = call_with_bound(store)
        store.close()
        for filler in fillers:
            filler.close()
    assert isinstance(error, StoreUnavailable) and "Timeout connecting" in str(error)


# -- cluster --------------------------------------------------------------------------------------


def test_a_cluster_node_down_fails_closed_for_the_users_it_holds(
    tmp_path: Path, clock: FrozenClock
) -> None:
    require_redis()
    cluster = RedisCluster3(tmp_path / "cluster").start()
    store = RedisStore.from_url(cluster.url, clock=clock, cluster=True, socket_timeout=0.5)
    try:
        users = [f"user{i}" for i in range(12)]
        for user in users:
            store.put_user_state(UserState(user_id=user, skips_used=1))
        victim = cluster.nodes[1]
        with victim.client() as c:
            owned = {user for user in users if c.cluster("countkeysinslot", _slot(user)) > 0}
        assert owned and owned != set(users), "the users are spread over the nodes"
        victim.kill()
        for user in users:
            if user in owned:
                with pytest.raises(StoreUnavailable):
                    store.get_user_state(user)
    finally:
        store.close()
        cluster.stop()


def _slot(user_id: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(f"creg:{{u:{user_id}}}:state".encode()))

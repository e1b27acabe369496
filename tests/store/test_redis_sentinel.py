"""The Sentinel path of RedisStore against real ``redis-server`` processes on loopback.

* One master and one Sentinel (``redis-server --sentinel``): the store finds the master through
  the Sentinel, works, and fails closed when the master is gone.
* A failover: a master, one replica (``--replicaof``) and three Sentinels (quorum 2). The master is
  killed, the Sentinels promote the replica, and the same store object carries on against it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_servers import (
    RedisSentinel,
    RedisServer,
    replication_offset,
    require_redis,
    wait_until,
)
from store_helpers import event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.redis import RedisStore

T0 = 1_700_000_000.0
#: a store call must return (or raise) within this many seconds, whatever the servers do; the
#: store's own timeouts are 0.5 s, so this only catches a hang, it does not measure anything
CALL_LIMIT = 5.0
#: how long Sentinel may take to fail over (about 2.3 s here, more if a leader vote is split)
FAILOVER_WITHIN = 30.0


@pytest.fixture
def master_and_sentinel(tmp_path: Path) -> Iterator[tuple[RedisServer, int]]:
    require_redis()
    master = RedisServer(tmp_path / "master").start()
    sentinel = RedisSentinel(tmp_path / "sentinel", master.port, quorum=1)
    try:
        sentinel.start()
        yield master, sentinel.port
    finally:
        sentinel.stop()
        master.stop()


def test_the_store_finds_the_master_through_the_sentinel(
    master_and_sentinel: tuple[RedisServer, int],
) -> None:
    master, sentinel_port = master_and_sentinel
    store = RedisStore.from_url(
        f"redis://127.0.0.1:{sentinel_port}/0",
        clock=FrozenClock(T0),
        sentinel="mymaster",
        socket_timeout=0.5,
        connect_timeout=0.5,
    )
    try:
        record = MethodRecord(
            id="m1", user_id="alice", kind=MethodKind.TOTP, label="app", created_at=T0
        )
        store.add_method(record, limit=5)
        assert [m.id for m in store.list_methods("alice")] == ["m1"]
        # The write went to the master the Sentinel named.
        with master.client() as direct:
            assert direct.dbsize() > 0
        store.put_challenge("c1", {"x": 1}, ttl=60)
        assert store.take_challenge("c1") == {"x": 1}
        assert store.take_challenge("c1") is None
        master.kill()
        with pytest.raises(StoreUnavailable):
            store.list_methods("alice")
    finally:
        store.close()


# -- failover to the replica ---------------------------------------------------------------------


@dataclass
class Group:
    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisSentinel]

    @property
    def url(self) -> str:
        """The store's URL: every Sentinel, so that any one of them may answer."""
        return "redis://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + "/0"

    def named_master(self) -> set[int | None]:
        """The master port each Sentinel names now."""
        return {s.master_port() for s in self.sentinels}


@pytest.fixture
def failover_group(tmp_path: Path) -> Iterator[Group]:
    """A master, its replica and three Sentinels (quorum 2) that know each other and the replica.

    Three Sentinels with quorum 2, not one with quorum 1, because that is the shape of a real
    deployment: the master must be seen down by two Sentinels (ODOWN) and the Sentinel that
    promotes the replica must win a vote of the majority. It is reliable and fast enough here
    (no failure in 30 runs of the failover alone, 6 of them in parallel): the Sentinels find each
    other (hello messages every 2 s) in about 2.1 s and fail over in about 2.3 s after the kill.
    One Sentinel with quorum 1 would skip the 2 s of discovery but took about 3.1 s to fail over,
    so it would save about 1 s and test no vote. ``down-after-milliseconds`` 1000 and
    ``failover-timeout`` 2000 make the failover take seconds, not minutes (a split vote would be
    retried after 2 x failover-timeout, well within FAILOVER_WITHIN).
    """
    require_redis()
    # No 5 s wait before the diskless full sync the replica asks for.
    master = RedisServer(tmp_path / "master", extra=["--repl-diskless-sync-delay", "0"])
    replica = RedisServer(
        tmp_path / "replica", extra=["--replicaof", "127.0.0.1", str(master.port)]
    )
    sentinels: list[RedisSentinel] = []
    try:
        master.start()
        replica.start()
        wait_until(
            lambda: _replication(replica)["master_link_status"] == "up",
            within=10, what=lambda: f"the replica syncs with the master: {replica.log()}",
        )  # fmt: skip
        # The Sentinels start after the replica is online: they learn of it from the master's
        # INFO, which they ask for on connecting and then only every 10 s.
        for i in range(3):
            sentinel = RedisSentinel(tmp_path / f"sentinel{i}", master.port, quorum=2,
                                     down_after_ms=1000, failover_timeout_ms=2000)  # fmt: skip
            sentinels.append(sentinel)  # before start(): stopped below even if it fails to start
            sentinel.start()
        wait_until(
            lambda: all(_knows_the_group(s) for s in sentinels),
            within=15, what="every Sentinel knows the replica and the two other Sentinels",
        )  # fmt: skip
        yield Group(master, replica, sentinels)
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        replica.stop()
        master.stop()


def _replication(server: RedisServer) -> dict[str, Any]:
    with server.client() as c:
        return dict(c.info("replication"))


def _knows_the_group(sentinel: RedisSentinel) -> bool:
    state = sentinel.master_state()
    return state["num-slaves"] == 1 and state["num-other-sentinels"] == 2


def _reader(server: RedisServer) -> RedisStore:
    """A store on one server, not through the Sentinels: only to read what that server holds."""
    return RedisStore.from_url(
        server.url, clock=FrozenClock(T0), socket_timeout=2, connect_timeout=2
    )


def bounded(call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception, failing the test if it takes more than CALL_LIMIT s."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # re-raised below, in the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CALL_LIMIT)
    assert not thread.is_alive(), f"a store call hung for more than {CALL_LIMIT} s"
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


def test_after_a_failover_the_same_store_works_against_the_promoted_replica(
    failover_group: Group,
) -> None:
    group = failover_group
    reader: RedisStore | None = None
    assert group.named_master() == {group.master.port}
    store = RedisStore.from_url(
        group.url, clock=FrozenClock(T0), sentinel="mymaster",
        socket_timeout=0.5, connect_timeout=0.5,
    )  # fmt: skip
    try:
        # 1. Writes go through the master and reach the replica.
        before = method(id="before", label="added before the failover")
        store.add_method(before, limit=5, events=[event("method.added")])
        store.save_session("s-before", {"step": "mfa"}, user_id="alice", ttl=600)
        store.put_challenge("c-before", {"n": 1}, ttl=600)
        written = replication_offset(group.master)
        wait_until(
            lambda: replication_offset(group.replica) >= written,
            within=10, what="the replica applies the writes",
        )  # fmt: skip
        reader = _reader(group.replica)  # reads the replica directly, as a store
        assert [m.id for m in reader.list_methods("alice")] == ["before"]
        assert reader.load_session("s-before") == {"step": "mfa"}
        assert reader.peek_challenge("c-before") == {"n": 1}

        # 2. The master dies. Until a Sentinel names the replica, every call fails closed, fast:
        # first the dead address is refused, then the Sentinels report the master down (no
        # master known: MasterNotFoundError).
        group.master.kill()
        calls: list[Callable[[], object]] = [
            lambda: store.list_methods("alice"),
            lambda: store.load_session("s-before"),
            lambda: store.take_challenge("c-probe"),
            lambda: store.put_challenge("c-probe", {}, ttl=60),
        ]
        causes: list[str] = []
        deadline = time.monotonic() + FAILOVER_WITHIN
        while group.replica.port not in group.named_master():
            assert time.monotonic() < deadline, f"no failover: {group.sentinels[0].log()}"
            try:
                bounded(calls[len(causes) % len(calls)])
            except StoreUnavailable as exc:
                causes.append(type(exc.__cause__).__name__)
            else:
                # Only possible if the failover completed since the check above.
                assert group.replica.port in group.named_master(), "a call succeeded, no master"
                break
            time.sleep(0.05)
        assert causes, "the failover was over before a single call"
        assert "MasterNotFoundError" in causes, causes

        # 3. The Sentinels promote the replica.
        wait_until(
            lambda: group.named_master() == {group.replica.port},
            within=FAILOVER_WITHIN, what=f"every Sentinel names the replica: {causes}",
        )  # fmt: skip
        assert _replication(group.replica)["role"] == "master"

        # 4. The same store, no new client: what was written before is there, new writes work,
        # and a challenge is still taken once.
        assert [m.id for m in bounded(lambda: store.list_methods("alice"))] == ["before"]
        assert store.get_method("alice", "before") == before
        assert store.load_session("s-before") == {"step": "mfa"}
        assert store.take_challenge("c-before") == {"n": 1}
        assert store.take_challenge("c-before") is None
        after = method(id="after", label="added after the failover")
        store.add_method(after, limit=5, events=[event("method.added")])
        assert [m.id for m in store.list_methods("alice")] == ["before", "after"]
        store.save_session("s-after", {"step": "done"}, user_id="alice", ttl=600,
                           replaces="s-before")  # fmt: skip
        assert store.load_session("s-after") == {"step": "done"}
        assert store.load_session("s-before") is None
        store.put_challenge("c-after", {"n": 2}, ttl=600)
        assert store.take_challenge("c-after") == {"n": 2}
        assert store.take_challenge("c-after") is None
        assert [e.event for e in store.list_audit(user_id="alice")] == ["method.added"] * 2
        # The writes are on the promoted replica's own data set.
        assert [m.id for m in reader.list_methods("alice")] == ["before", "after"]
        assert reader.load_session("s-after") == {"step": "done"}
        assert reader.peek_challenge("c-after") is None
    finally:
        store.close()
        if reader is not None:
            reader.close()

"""The Sentinel path of RedisStore against a real master and a real Sentinel (redis-server
--sentinel) on loopback: the store finds the master through the Sentinel, works, and fails closed
when the master is gone."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_servers import RedisServer, free_port, require_redis

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.redis import RedisStore

T0 = 1_700_000_000.0


@pytest.fixture
def master_and_sentinel(tmp_path: Path) -> Iterator[tuple[RedisServer, int]]:
    require_redis()
    master = RedisServer(tmp_path / "master").start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its config file: it must be writable
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
    )
    sentinel = subprocess.Popen(
        ["redis-server", str(conf), "--sentinel"], cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    try:
        probe = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster"):
                    break
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the Sentinel did not come up"
            time.sleep(0.05)
        probe.close()
        yield master, port
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
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

"""Real ``redis-server`` processes for the tests, on free loopback ports in temporary directories.

The tests own these processes: they kill and restart them to provoke faults. Every server starts
without persistence (``--save '' --appendonly no``) unless a test asks for AOF, and is stopped by
the fixture that made it, also when the test fails.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "CountingPool",
    "RedisCluster3",
    "RedisCluster6",
    "RedisSentinel",
    "RedisServer",
    "free_port",
    "replication_offset",
    "require_redis",
    "wait_until",
]

_READY_WITHIN = 10.0  # seconds; a server is ready in about 0.1 s here


def require_redis() -> None:
    """Fail (not skip) without the binaries: ``make test`` installs them (``make sysdeps``)."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: run `make sysdeps` (apt redis-server)")


def free_port() -> int:
    """A port the kernel just handed out for a socket bound to port 0 (then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` the test owns: start, kill -9, restart on the same port and directory."""

    def __init__(self, directory: Path, *, extra: Sequence[str] = (), port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.extra = tuple(extra)
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", "server.log", *self.extra]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=self.directory, stdout=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_WITHIN
        with self.client() as probe:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    if self.process is not None and self.process.poll() is not None:
                        raise RuntimeError(f"redis-server exited: {self.log()}") from None
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no AOF rewrite; what is not on disk is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def flush(self) -> None:
        with self.client() as c:
            c.flushall()


def _cluster_args(node_timeout_ms: int = 2000) -> list[str]:
    # The bus port is given: the default (port + 10000) does not exist for ports above 55535.
    return ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(free_port()),
            "--cluster-node-timeout", str(node_timeout_ms)]  # fmt: skip


class RedisCluster3:
    """Three primaries, no replicas, slots spread by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [RedisServer(directory / f"node{i}", extra=_cluster_args()) for i in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster3:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + _READY_WITHIN
        for node in self.nodes:
            with node.client() as c:
                while c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the cluster did not reach cluster_state:ok")
                    time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()


def script_names(module: Any) -> dict[bytes, str]:
    """sha1 -> name of the Lua scripts a module lists in ``__all__`` (store/redis_scripts.py)."""
    return {
        hashlib.sha1(getattr(module, name).encode()).hexdigest().encode(): name
        for name in module.__all__
    }


class CountingPool(redis.ConnectionPool):
    """A pool whose connections record every write to the socket in :attr:`sent`: one entry per
    round trip (a single command, or a whole pipeline), named by its first command. Without
    retries, as ``RedisStore.from_url`` makes its clients: the store's commands take the path
    they take in production (``RedisConnection._send``)."""

    def __init__(self, port: int, *, scripts: dict[bytes, str] | None = None) -> None:
        """``scripts``: sha1 -> name; an ``EVALSHA`` of one of them is recorded as
        ``b"EVALSHA <name>"`` (see :func:`script_names`)."""
        sent: list[bytes] = []
        names = scripts or {}

        class Counting(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                packed = command if isinstance(command, bytes) else b"".join(command)
                parts = packed.split(b"\r\n")
                name = parts[2].upper()
                if name == b"EVALSHA" and parts[4] in names:
                    name += b" " + names[parts[4]].encode()
                sent.append(name)
                super().send_packed_command(command, check_health)

        super().__init__(port=port, connection_class=Counting, retry=Retry(NoBackoff(), 0))
        self.sent = sent


def wait_until(
    condition: Callable[[], bool], *, within: float, what: str | Callable[[], str]
) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail with ``what`` after ``within`` seconds
    (a callable ``what`` is called then, e.g. to read a log as it is at the failure).

    Connection errors count as "not yet": the servers polled here come and go on purpose."""
    deadline = time.monotonic() + within
    while True:
        try:
            if condition():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {within} s: {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.05)


def replication_offset(server: RedisServer) -> int:
    """How far the server's replication stream goes (master) or has been applied (replica)."""
    with server.client() as c:
        return int(c.info("replication")["master_repl_offset"])


class RedisSentinel:
    """One ``redis-server --sentinel`` the test owns, monitoring ``service`` at ``master_port``.

    ``down_after_ms`` and ``failover_timeout_ms`` are Sentinel's ``down-after-milliseconds`` and
    ``failover-timeout``; small values make a failover take seconds instead of minutes. The config
    file is in ``directory`` (Sentinel rewrites it), the log in ``directory/sentinel.log``.
    """

    def __init__(
        self,
        directory: Path,
        master_port: int,
        *,
        service: str = "mymaster",
        quorum: int = 1,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 180_000,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.service = service
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "sentinel.conf").write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\nlogfile sentinel.log\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} {failover_timeout_ms}\n"
        )

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> RedisSentinel:
        self.process = subprocess.Popen(
            ["redis-server", "sentinel.conf", "--sentinel"], cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(
            lambda: self.master_port() is not None, within=_READY_WITHIN,
            what=lambda: f"the Sentinel on {self.port} names a master: {self.log()}",
        )  # fmt: skip
        return self

    def master_port(self) -> int | None:
        """The port of the master this Sentinel names now (``get-master-addr-by-name``)."""
        with self.client() as c:
            reply = c.execute_command("SENTINEL", "get-master-addr-by-name", self.service)
        return None if not reply else int(reply[1])

    def master_state(self) -> dict[str, object]:
        """``SENTINEL MASTER <service>``, parsed by redis-py (``num-slaves``, ``flags``, ...)."""
        with self.client() as c:
            return dict(c.sentinel_master(self.service))

    def log(self) -> str:
        path = self.directory / "sentinel.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _with_new_bus_port(args: list[str]) -> list[str]:
    at = args.index("--cluster-port")
    return [*args[: at + 1], str(free_port()), *args[at + 2 :]]


class RedisCluster6:
    """Three primaries with a replica each (``--cluster-replicas 1``), for failovers.

    ``node_timeout_ms`` is ``cluster-node-timeout``: a primary killed is marked failed after it,
    and its replica promoted about a second later. Replicas start with
    ``cluster-replica-no-failover yes`` when ``hold_failover`` is set, so a test can look at a
    primary that is down and not yet replaced, then :meth:`allow_failover`.
    """

    def __init__(
        self, directory: Path, *, node_timeout_ms: int = 1000, full_coverage: bool = False
    ) -> None:
        coverage = ["--cluster-require-full-coverage", "yes" if full_coverage else "no"]
        self.nodes = [
            RedisServer(directory / f"node{i}", extra=[*_cluster_args(node_timeout_ms), *coverage])
            for i in range(6)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster6:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def role(self, node: RedisServer) -> str:
        with node.client() as c:
            return str(c.info("replication")["role"])

    def primaries(self) -> list[RedisServer]:
        return [n for n in self.alive() if self.role(n) == "master"]

    def replica_of(self, primary: RedisServer) -> RedisServer:
        for node in self.alive():
            with node.client() as c:
                info = c.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                return node
        raise AssertionError(f"no replica of {primary.port}")

    def owner(self, key: str, *, seen_by: RedisServer | None = None) -> RedisServer:
        """The primary serving ``key``'s slot, as a live node (``seen_by``) sees the cluster."""
        found = self._serving(key, seen_by or self.alive()[0])
        if found is None:
            raise AssertionError(f"slot of {key!r} not served")
        return found

    def _serving(self, key: str, seen_by: RedisServer) -> RedisServer | None:
        with seen_by.client() as c:
            slot = int(c.execute_command("CLUSTER KEYSLOT", key))
            for start, end, primary, *_ in c.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(primary[1]))
        return None

    def owner_everywhere(self, key: str) -> RedisServer | None:
        """The primary of ``key``'s slot if every live node names the same one, else None (also
        while a node lists the slot nowhere: during a failover, as a node learns of it)."""
        seen = {self._serving(key, node) for node in self.alive()}
        return seen.pop() if len(seen) == 1 else None

    def restart(self, node: RedisServer) -> None:
        """Start a killed node again with its nodes.conf (it comes back as a replica if its
        replica was promoted). Its port may have been taken meanwhile (an outgoing connection
        of any process on this machine can get it as its local port): then it starts on new
        ports, which the cluster learns from its node id."""
        for _ in range(3):
            try:
                node.start()
                with node.client() as c:
                    if int(c.info("server")["process_id"]) == node.process.pid:  # type: ignore[union-attr]
                        return
            except (RuntimeError, redis.ConnectionError):
                pass
            node.kill()
            node.port = free_port()
            node.extra = tuple(_with_new_bus_port(list(node.extra)))
        raise AssertionError(f"node in {node.directory} did not start again: {node.log()}")

    def hold_failover(self, hold: bool = True) -> None:
        for node in self.alive():
            with node.client() as c:
                c.config_set("cluster-replica-no-failover", "yes" if hold else "no")

    def set_full_coverage(self, full: bool) -> None:
        for node in self.alive():
            with node.client() as c:
                c.config_set("cluster-require-full-coverage", "yes" if full else "no")

    def wait_marked_failed(self, node: RedisServer) -> None:
        """Until every live node flags ``node`` as failed (``fail``, not only ``fail?``)."""

        def flagged() -> bool:
            for other in self.alive():
                with other.client() as c:
                    nodes = c.execute_command("CLUSTER NODES")  # parsed: {"host:port": {...}}
                flags = str(nodes.get(f"127.0.0.1:{node.port}", {}).get("flags", ""))
                if "fail" not in flags.split(","):
                    return False
            return True

        wait_until(flagged, within=_READY_WITHIN, what=f"node {node.port} marked failed")

    def wait_healthy(self) -> None:
        """Until every live node says ``cluster_state:ok`` with three primaries, each live
        replica's link to its primary is up, and every primary has a replica linked."""

        def healthy() -> bool:
            for node in self.alive():
                with node.client() as c:
                    if c.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                        return False
                    info = c.info("replication")
                    if info["role"] == "slave" and info.get("master_link_status") != "up":
                        return False
            return len(self.primaries()) == 3

        wait_until(healthy, within=3 * _READY_WITHIN, what="the cluster healthy")

    def rejoin(self, node: RedisServer) -> None:
        """Start a killed node again (:meth:`restart`) and wait for the cluster to be healthy."""
        self.restart(node)
        self.wait_healthy()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

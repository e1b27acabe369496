"""A real PostgreSQL server for the tests: ``initdb`` into a temporary directory, run as an
unprivileged user (the server refuses root), listening on a free loopback port and on a unix
socket in that directory.

The tests own the process: they restart it and cut its connections to provoke faults. It runs
without fsync, which only matters when the machine itself crashes; commits stay synchronous, so
a server killed at once (``stop(immediate=True)``) keeps every commit it acknowledged.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

__all__ = ["PostgresServer", "postgres_bin", "require_postgres"]

_READY_WITHIN = 30.0  # seconds; a server is ready in about 0.3 s here
_TABLES = "methods, user_state, sessions, challenges, counters, audit"


def postgres_bin() -> Path | None:
    """The folder of ``postgres``/``initdb``: Debian keeps them in /usr/lib/postgresql/<ver>/bin,
    off PATH; else wherever PATH finds ``postgres``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def require_postgres() -> Path:
    """Fail (not skip) without the server: ``make test`` installs it (``make sysdeps``)."""
    folder = postgres_bin()
    if folder is None or not (folder / "initdb").exists():
        raise RuntimeError("PostgreSQL not found: run `make sysdeps` (apt postgresql)")
    return folder


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demote() -> tuple[int, int] | None:
    """The uid and gid to run the server as: ``nobody`` when we are root (the server refuses
    root). Set on the process itself (``Popen(user=, group=)``), so signals reach the server."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


class PostgresServer:
    """One PostgreSQL server the test owns: start, stop (fast or immediate), restart."""

    def __init__(
        self,
        *,
        port: int | None = None,
        extra: Sequence[str] = (),
        replica_of: PostgresServer | None = None,
    ) -> None:
        """``replica_of``: a streaming standby of that (running) server, made with
        ``pg_basebackup -R`` instead of ``initdb``."""
        self.bin = require_postgres()
        self.ids = _demote()
        # Not under pytest's 0700 tmp folder: the unprivileged server must reach its directory.
        self.directory = Path(tempfile.mkdtemp(prefix="creg-pg-"))
        if self.ids is not None:
            os.chown(self.directory, *self.ids)
        self.data = self.directory / "data"
        self.port = port or _free_port()
        self.extra = tuple(extra)
        self.process: subprocess.Popen[bytes] | None = None
        if replica_of is not None:
            self._run([str(self.bin / "pg_basebackup"), "-D", str(self.data), "-R",
                       "-h", "127.0.0.1", "-p", str(replica_of.port), "-U", "postgres",
                       "--no-sync"])  # fmt: skip
            return
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, cwd=self.directory, **self._as_user())

    def _as_user(self) -> dict[str, int]:
        return {} if self.ids is None else {"user": self.ids[0], "group": self.ids[1]}

    @property
    def dsn(self) -> str:
        return self.dsn_for("creg")

    def dsn_for(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn_for(dbname), autocommit=True, connect_timeout=5)

    def start(self) -> PostgresServer:
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", *self.extra]  # fmt: skip
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 (the child writes it)
        self.process = subprocess.Popen(
            args, cwd=self.directory, stdout=log, stderr=log, **self._as_user()
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_WITHIN
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"postgres exited: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log_tail(self) -> str:
        try:
            return (self.directory / "server.log").read_text()[-2000:]
        except OSError:
            return ""

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def truncate(self, dbname: str = "creg") -> None:
        """Empty the store's tables (a fresh store per test, without a database per test)."""
        with self.connect(dbname) as conn:
            conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY")

    def terminate(self, dbname: str = "creg") -> int:
        """``pg_terminate_backend`` every client connection of ``dbname``; returns how many."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchone()
        return int(row[0]) if row else 0

    def stop(self, *, immediate: bool = False) -> None:
        """SIGINT (fast: clients cut, clean shutdown) or SIGQUIT (immediate: as if it crashed)."""
        if self.process is None:
            return
        import signal

        self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, *, immediate: bool = False) -> None:
        self.stop(immediate=immediate)
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def wait_until(check: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)

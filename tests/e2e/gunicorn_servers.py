"""Real gunicorn processes for the tests and benchmarks, on free loopback ports.

``Gunicorn(app, workers=4, env=...)`` starts ``python -m gunicorn`` with an access log that records
the worker's pid for every request (``%(p)s``): that is how a test proves that the steps of one
sign-in were served by different worker processes, without adding a header to the product. The
caller owns the process; ``stop()`` ends it (and its workers) by its own pid.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AccessLine", "Gunicorn", "free_port"]

_READY_WITHIN = 60.0  # seconds; the example IdP's workers import Flask, Authlib, the middleware
#: one line per request: worker pid (gunicorn writes it as ``<pid>``), method, path, query, status
ACCESS_FORMAT = '%(p)s %(m)s "%(U)s" "%(q)s" %(s)s'
_LINE = re.compile(r'^<(\d+)> (\S+) "([^"]*)" "([^"]*)" (\d{3})$')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessLine:
    pid: int
    method: str
    path: str
    query: str
    status: int


class Gunicorn:
    """``python -m gunicorn APP`` with N workers on 127.0.0.1, a pid-per-request access log
    (``access_log=False``: none, as gunicorn runs by default; the benchmarks' choice)."""

    def __init__(
        self,
        app: str,
        *,
        directory: Path,
        workers: int = 4,
        threads: int = 1,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
        port: int | None = None,
        pythonpath: Sequence[str] = (),
        access_log: bool = True,
    ) -> None:
        self.app, self.workers, self.threads = app, workers, threads
        self.logs_access = access_log
        self.directory = directory
        self.port = port or free_port()
        self.env = dict(env or {})
        self.extra = tuple(extra)
        self.pythonpath = tuple(pythonpath)
        self.access_log = directory / f"access-{self.port}.log"
        self.error_log = directory / f"error-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        args = [sys.executable, "-m", "gunicorn", self.app,
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                "--threads", str(self.threads),
                *(("--access-logfile", str(self.access_log), "--access-logformat", ACCESS_FORMAT)
                  if self.logs_access else ()),
                "--error-logfile", str(self.error_log), "--timeout", "60",
                *(a for p in self.pythonpath for a in ("--pythonpath", p)), *self.extra]  # fmt: skip
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(args, env=env, cwd=self.directory)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_WITHIN
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /__ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    if sock.recv(16).startswith(b"HTTP/"):
                        return
            except OSError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.errors()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer: {self.errors()}")
            time.sleep(0.05)

    def wait_all_workers(self) -> None:
        """Until every worker has booted (each logs "Booting worker with pid")."""
        deadline = time.monotonic() + _READY_WITHIN
        while self.errors(full=True).count("Booting worker") < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not boot: {self.errors()}")
            time.sleep(0.05)
        # A booted worker imports the app before it accepts: give each one request's worth.
        time.sleep(0.5)

    def errors(self, *, full: bool = False) -> str:
        text = self.error_log.read_text() if self.error_log.exists() else ""
        return text if full else text[-3000:]

    def access(self) -> list[AccessLine]:
        """Every request logged so far, in the order the workers finished them."""
        if not self.logs_access:
            raise RuntimeError("this server was started without an access log")
        if not self.access_log.exists():
            return []
        lines = []
        for raw in self.access_log.read_text().splitlines():
            match = _LINE.match(raw.strip())
            if match:
                pid, method, path, query, status = match.groups()
                lines.append(
                    AccessLine(
                        pid=int(pid), method=method, path=path, query=query, status=int(status)
                    )
                )
        return lines

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)  # the arbiter stops its workers, then exits
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

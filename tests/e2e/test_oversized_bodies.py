"""Oversized request bodies against real servers, by raw socket: every one gets its complete 413
and then a clean end of the connection (EOF, not a reset that could destroy the 413, and not a
hang). Multi-megabyte bodies, a Content-Length that promises megabytes and sends ten bytes, and
a large body after a kept-alive request; the middleware's pages, its /authorize guard and the
example IdP's own login form; werkzeug's server (``python -m example_idp``) and gunicorn (gthread
with keep-alive, sync)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gunicorn_servers import Gunicorn
from werkzeug.serving import make_server

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
PATHS = [
    "/security-info/signin",
    "/security-info/reset",
    "/authorize",
    "/login",
    "/security-info/admin/api/users/alice/temporary-access-pass",
]
WAIT = 15.0  # a failure detector only: a hang is a failure, never a measured time


def instance(root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "combinedreg.toml"
    text = (EXAMPLE_IDP / "combinedreg.toml").read_text()
    text = text.replace('"instance/', f'"{root}/instance/')
    config.write_text(text)
    return root / "instance", config


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn-gthread", "gunicorn-sync"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    root = tmp_path_factory.mktemp(request.param)
    folder, config = instance(root)
    if request.param == "werkzeug":
        srv = make_server(
            "127.0.0.1", 0, create_app(instance_path=folder, combinedreg_config=config),
            threaded=True,
        )  # fmt: skip
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        yield srv.port
        srv.shutdown()
        thread.join(10)
        return
    threads = 4 if request.param == "gunicorn-gthread" else 1
    extra = ("--worker-class", "gthread") if threads > 1 else ("--worker-class", "sync")
    gunicorn = Gunicorn(
        "example_idp.wsgi:app", directory=root, workers=1, threads=threads, extra=extra,
        env={"EXAMPLE_IDP_INSTANCE": str(folder), "EXAMPLE_IDP_COMBINEDREG_CONFIG": str(config)},
        pythonpath=[str(EXAMPLE_IDP.parent)],
    ).start()  # fmt: skip
    try:
        yield gunicorn.port
    finally:
        gunicorn.stop()


@dataclass
class Answer:
    status: int
    complete: bool  # as many body bytes as Content-Length said
    ending: str  # "eof", "reset" or "hang"


def read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[int, bytes, int, bytes]:
    """(status, headers, Content-Length, body bytes read so far beyond the headers)"""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection ended before a response: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, head, length, rest


def oversized(port: int, path: str, declared: int, sent: int, *, first: bytes = b"") -> Answer:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        pending = b""
        if first:  # a kept-alive request before the large one, on the same connection
            sock.sendall(first)
            status, _, length, rest = read_response(sock)
            while len(rest) < length:
                rest += sock.recv(65536)
            assert status == 200
            pending = rest[length:]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()

        def send() -> None:
            try:
                sock.sendall(head)
                chunk = b"a=" + b"x" * 65534
                left = sent
                while left > 0:
                    sock.sendall(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
            except OSError:
                pass  # the server stopped reading: what it answered is what counts

        sender = threading.Thread(target=send)
        sender.start()
        try:
            status, _, length, body = read_response(sock, pending)
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            complete = len(body) >= length
            try:
                ending = "eof" if sock.recv(65536) == b"" else "more data"
            except ConnectionResetError:
                ending = "reset"
            except TimeoutError:
                ending = "hang"
        finally:
            sock.close()
            sender.join(WAIT)
        return Answer(status, complete, ending)
    finally:
        sock.close()


@pytest.mark.parametrize("path", PATHS)
def test_a_multi_megabyte_body_gets_its_413_and_a_clean_close(server: int, path: str) -> None:
    for _ in range(3):  # a reset is a race: give it more than one chance to show
        assert oversized(server, path, 5_000_000, 5_000_000) == Answer(413, True, "eof")


@pytest.mark.parametrize("path", PATHS)
def test_an_overstated_content_length_gets_413_at_once(server: int, path: str) -> None:
    """Megabytes promised, ten bytes sent: nothing waits for the rest."""
    assert oversized(server, path, 5_000_000, 10) == Answer(413, True, "eof")


def test_a_large_body_after_a_kept_alive_request(server: int) -> None:
    first = b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server), timeout=WAIT) as probe:
        probe.sendall(first)
        _, head, _, _ = read_response(probe)
    if b"connection: close" in head.lower():
        return  # werkzeug's server keeps no connection alive: nothing can follow on it
    answer = oversized(server, "/security-info/signin", 3_000_000, 3_000_000, first=first)
    assert answer == Answer(413, True, "eof")

"""A request body too large to read: answer 413 at once, then close the connection cleanly.

Refusing a body without reading it leaves the rest of it on the connection. A server that then
closes the socket with unread bytes in it makes the kernel send a reset, which may destroy the
413 before the client read it ("connection closed, no response"); a server that keeps the
connection alive reads the rest as the next request, or waits for bytes an overstated
``Content-Length`` promised and never sends. So, after the 413 has been written:

1. the write side is shut (``shutdown(SHUT_WR)``): the client sees the response, then the end;
2. what the client still sends is read and thrown away, up to ``LINGER_BYTES`` or
   ``LINGER_SECONDS`` (the "lingering close" of nginx and Apache), so the final close finds
   nothing unread and sends no reset.

Done after the response's last chunk was written (:class:`Lingering`), on the socket the server
names in the environ (gunicorn: ``gunicorn.socket``, werkzeug: ``werkzeug.socket``), both of
which write each chunk before asking for the next. Elsewhere only the 413 is sent, and the server
decides. A host gives its own 413 the same by wrapping its body in :class:`Lingering` (example_idp/limits.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "LINGER_BYTES",
    "LINGER_SECONDS",
    "Lingering",
    "declared_too_large",
    "linger_after_refusal",
]

#: at most this much of a refused body is read and thrown away after the 413
LINGER_BYTES = 32 * 1024 * 1024
#: and for at most this long
LINGER_SECONDS = 2.0
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


def declared_too_large(environ: Mapping[str, Any], limit: int) -> bool:
    """Does ``Content-Length`` announce more than ``limit`` bytes? (A malformed one is the
    body reader's to refuse; a chunked body is measured as it is read.)"""
    raw = environ.get("CONTENT_LENGTH")
    if not raw:
        return False
    try:
        return int(raw) > limit
    except (TypeError, ValueError):
        return False


def linger_after_refusal(environ: Mapping[str, Any]) -> None:
    """After a refusal was written: end our side, drain what the client still sends (bounded),
    and leave the socket to the server, which closes it with nothing unread."""
    sock = next(
        (environ[k] for k in _SOCKET_KEYS if isinstance(environ.get(k), socket.socket)), None
    )
    if sock is None:
        return
    try:
        prior = sock.gettimeout()
    except OSError:
        return
    deadline = time.monotonic() + LINGER_SECONDS
    drained = 0
    try:
        sock.shutdown(socket.SHUT_WR)
        while drained < LINGER_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                break  # the client closed its side: nothing is left to reset
            drained += len(data)
    except OSError:
        pass  # reset, timeout, already closed: the server closes it as it would have
    finally:
        try:
            sock.settimeout(prior)
        except OSError:
            pass


class Lingering:
    """A refusal's body that lingers on the socket once it has been written.

    After the last chunk: gunicorn and werkzeug write each chunk before they ask for the next,
    and werkzeug's development server, before it closes the iterable, reads what is left of the
    body until the client closes (blocking: it waits for a client that waits for the end of the
    response). ``close`` lingers too, for a server that stops iterating early; once."""

    def __init__(self, body: Iterable[bytes], environ: Mapping[str, Any]) -> None:
        self._body, self._environ = body, environ
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._linger()

    def _linger(self) -> None:
        if not self._done:
            self._done = True
            linger_after_refusal(self._environ)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._linger()

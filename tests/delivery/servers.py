"""Real servers on loopback for the delivery tests: an SMTP server (aiosmtpd) and a webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from oidc_combinedreg.delivery.webhook import verify_signature


def free_port() -> int:
    # aiosmtpd's Controller cannot take port 0: ask the OS for a free port first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler that keeps every message; refuses recipients in ``refuse``."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.messages: list[Message] = []
        self.refuse = refuse

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(refuse: frozenset[str] = frozenset()) -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox(refuse)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


class Receiver:
    """What the webhook receiver saw: each request's headers, body, and whether it was signed."""

    def __init__(self, secret: bytes, statuses: list[int]) -> None:
        self.secret = secret
        #: statuses to answer in turn (the last one repeats)
        self.statuses = statuses
        self.requests: list[dict[str, Any]] = []


@contextmanager
def webhook_receiver(secret: bytes, statuses: list[int]) -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(secret, statuses)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            import time

            signed = verify_signature(
                receiver.secret, dict(self.headers.items()), body, now=time.time()
            )
            receiver.requests.append(
                {"headers": dict(self.headers.items()), "json": json.loads(body), "signed": signed}
            )
            index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
            status = receiver.statuses[index] if signed else 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send", receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

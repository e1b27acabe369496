"""The demo's development outbox: every email, text and call the demo sends, on one page.

``python -m example_idp`` has no real mail server or SMS gateway, yet phones, email, password reset
with two methods and the "This wasn't me" link of every change notice should be there to try. So:

* email goes through the shipped SMTP provider (``SmtpSender``, as a deployment's
  ``[delivery.email] provider = "smtp"``) to a real SMTP server on loopback (aiosmtpd) that this
  module starts and that files each message in the outbox;
* texts and calls go to :class:`OutboxSender`, a provider behind the same ``TextSender`` /
  ``VoiceCaller`` interface a deployment's gateway implements (docs/delivery.md);
* ``/outbox`` lists them, newest first, with their links clickable (the demo RP links to it).

A provider the config names itself stays: the outbox only fills the channels it leaves empty.
Development only: :func:`create_demo_app` refuses a config whose ``general.environment`` is
``production``, because the page shows every user's codes (reset codes too: whoever reads them can
reset any demo user's password). For the same reason the page answers only a caller on this
machine (a loopback address), even when the demo listens on every address; and it keeps the
newest :data:`KEEP` messages, not every message ever sent.
"""

from __future__ import annotations

import atexit
import email.policy
import ipaddress
import os
import re
import socket
import sqlite3
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape

from oidc_combinedreg import load_config
from oidc_combinedreg.config.model import Config
from oidc_combinedreg.delivery.base import Delivery, TextMessage, VoiceMessage
from oidc_combinedreg.delivery.config import build_delivery
from oidc_combinedreg.delivery.smtp import SmtpSecurity, SmtpSender

from .app import DEFAULT_COMBINEDREG_CONFIG, DEFAULT_INSTANCE_PATH, DEFAULT_ISSUER, create_app
from .client_address import client_address

__all__ = ["EXTENSION", "KEEP", "Outbox", "OutboxRefused", "OutboxSender", "create_demo_app"]

EXTENSION = "example_idp_outbox"
#: messages kept: the newest; older ones are deleted as new ones arrive
KEEP = 1000
#: the sender of the demo's email
FROM = "Contoso (demo) <no-reply@example.test>"
_URL = re.compile(r"https?://[^\s<>\"']+")
_CODE = re.compile(r"\b(\d{6,8})\b")

bp = Blueprint("outbox", __name__)


class OutboxRefused(RuntimeError):
    """The outbox was asked for in production."""


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    created: float
    channel: str
    to: str
    subject: str
    body: str
    code: str

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.created, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    @property
    def linked_body(self) -> Markup:
        """The body escaped, its URLs as links (the "This wasn't me" link of a notice)."""
        parts, last = [], 0
        for found in _URL.finditer(self.body):
            parts.append(escape(self.body[last : found.start()]))
            url = found.group(0).rstrip(".,;)")
            parts.append(Markup('<a href="{0}">{0}</a>').format(url))
            last = found.start() + len(url)
        parts.append(escape(self.body[last:]))
        return Markup("").join(parts)


class Outbox:
    """Messages in a SQLite file of the instance folder (every thread, the SMTP server's too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " created REAL, channel TEXT, recipient TEXT, subject TEXT, body TEXT, code TEXT)"
            )

    def add(self, channel: str, to: str, subject: str, body: str, code: str = "") -> None:
        if not code:
            found = _CODE.search(f"{subject}\n{body}")
            code = found.group(1) if found and "code" in f"{subject} {body}".lower() else ""
        with closing(sqlite3.connect(self.path)) as db, db:
            db.execute(
                "INSERT INTO messages (created, channel, recipient, subject, body, code)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (datetime.now(UTC).timestamp(), channel, to, subject, body, code),
            )
            db.execute(
                "DELETE FROM messages WHERE id <= (SELECT max(id) FROM messages) - ?", (KEEP,)
            )

    def messages(self, limit: int = 200) -> list[Message]:
        """Newest first."""
        with closing(sqlite3.connect(self.path)) as db:
            rows = db.execute(
                "SELECT id, created, channel, recipient, subject, body, code FROM messages"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Message(*row) for row in rows]


class OutboxSender:
    """Texts and calls into the outbox: a ``TextSender`` and ``VoiceCaller`` like any gateway's."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def send_text(self, message: TextMessage) -> None:
        self.outbox.add("sms", message.to, "", message.body, message.code)

    def call(self, message: VoiceMessage) -> None:
        self.outbox.add("voice", message.to, "", message.say, message.code)


class _MailReceiver:
    """aiosmtpd handler: each message accepted is filed under each of its recipients."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        message = message_from_bytes(data, policy=email.policy.default)
        plain = message.get_body(preferencelist=("plain",))
        text = plain.get_content() if plain is not None else ""
        for recipient in envelope.rcpt_tos:
            self.outbox.add("email", recipient, str(message["Subject"] or ""), text)
        return "250 Message accepted for delivery"


class MailServer:
    """A real SMTP server on 127.0.0.1 (a free port), filing into the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        from aiosmtpd.controller import Controller

        # aiosmtpd's Controller cannot take port 0: ask the OS for a free port first.
        with closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(_MailReceiver(outbox), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        self._running = True
        atexit.register(self.stop)

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()


def _with_outbox(config: Config, outbox: Outbox, mail: MailServer) -> Delivery:
    configured = build_delivery(config.delivery)
    sender = OutboxSender(outbox)
    email_sender = configured.email or SmtpSender(
        host="127.0.0.1", port=mail.port, sender=FROM, security=SmtpSecurity.NONE, timeout=5
    )
    return Delivery(
        email=email_sender, text=configured.text or sender, voice=configured.voice or sender
    )


def create_demo_app(
    *,
    combinedreg_config: Any = DEFAULT_COMBINEDREG_CONFIG,
    instance_path: str | os.PathLike[str] | None = None,
    issuer: str | None = None,
    **kwargs: Any,
) -> Flask:
    """``create_app`` with the development outbox (``python -m example_idp``); the other keyword
    arguments go to ``create_app``. Raises :class:`OutboxRefused` in production."""
    if isinstance(combinedreg_config, (str, os.PathLike)):
        combinedreg_config = load_config(combinedreg_config)
    config: Config = combinedreg_config
    if config.general.environment.value == "production":
        raise OutboxRefused(
            "general.environment: the development outbox shows every user's codes and is "
            "refused in production; configure [delivery] providers and run with --no-outbox"
        )
    issuer = (issuer or os.environ.get("EXAMPLE_IDP_ISSUER") or DEFAULT_ISSUER).rstrip("/")
    instance = Path(instance_path or DEFAULT_INSTANCE_PATH).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(instance / "outbox.sqlite3")
    mail = MailServer(outbox)
    if not config.delivery.public_url:  # links in email ("This wasn't me") point at the demo
        config = replace(config, delivery=replace(config.delivery, public_url=issuer))
    app = create_app(
        instance_path=instance,
        issuer=issuer,
        combinedreg_config=config,
        delivery=_with_outbox(config, outbox, mail),
        **kwargs,
    )
    app.extensions[EXTENSION] = outbox
    app.extensions[EXTENSION + "_smtp"] = mail
    app.register_blueprint(bp)
    return app


def _on_this_machine(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@bp.get("/outbox")
def page() -> ResponseReturnValue:
    if not _on_this_machine(client_address()):
        text = "The development outbox holds every user's codes: it is shown on this machine only."
        return text, 403, {"Content-Type": "text/plain; charset=utf-8"}
    outbox: Outbox = current_app.extensions[EXTENSION]
    return render_template("example_idp/outbox.html", messages=outbox.messages())

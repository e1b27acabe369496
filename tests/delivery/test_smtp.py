"""Email through a real SMTP server on loopback (aiosmtpd): the code is read from the real message and
completes registration; a refused connection or recipient is a clear error and binds nothing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from oidc_combinedreg.delivery.base import Delivery, DeliveryFailed
from oidc_combinedreg.delivery.smtp import SmtpSecurity, SmtpSender
from oidc_combinedreg.methods.kinds import MethodKind

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from codes_env import make_env  # noqa: E402
from servers import free_port, smtp_server  # noqa: E402


def _sender(port: int) -> SmtpSender:
    return SmtpSender(
        host="127.0.0.1",
        port=port,
        sender="Contoso <no-reply@contoso.example>",
        security=SmtpSecurity.NONE,
        timeout=5,
    )


def _text_and_html(message: object) -> tuple[str, str]:
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()  # type: ignore[attr-defined]
        if not p.is_multipart()
    }
    return parts["text/plain"], parts["text/html"]


def test_the_code_arrives_by_smtp_and_completes_the_registration() -> None:
    with smtp_server() as (port, mailbox):
        env = make_env()
        svc = env.info.email
        svc.delivery = Delivery(email=_sender(port))
        env.info.notifier.email = svc.delivery.email
        _, state = svc.register_begin("alice", address="alice@home.example", ip=None)
        [message] = mailbox.messages
        assert message["To"] == "alice@home.example"
        assert message["Subject"] == "Your Contoso verification code"
        text, html = _text_and_html(message)
        code = re.search(r"code is: ([0-9]{6})", text).group(1)  # type: ignore[union-attr]
        assert code in html and "<html" in html
        record = svc.register_complete("alice", state, code, ip=None)
        assert record.kind is MethodKind.EMAIL
        # The notification went out by SMTP too, to both addresses.
        notices = [m for m in mailbox.messages if "security info changed" in m["Subject"]]
        assert sorted(m["To"] for m in notices) == ["alice@corp.example", "alice@home.example"]


def test_a_refused_recipient_is_a_clear_permanent_error_and_nothing_is_registered() -> None:
    with smtp_server(refuse=frozenset({"ghost@home.example"})) as (port, mailbox):
        env = make_env()
        env.info.email.delivery = Delivery(email=_sender(port))
        with pytest.raises(DeliveryFailed) as caught:
            env.info.email.register_begin("alice", address="ghost@home.example", ip=None)
        assert caught.value.reason == "recipient refused" and caught.value.permanent
        assert mailbox.messages == []
        assert env.store.list_methods("alice") == []
        assert env.store.list_audit(event_prefix="code.send_failed")


def test_a_server_that_refuses_the_connection_is_a_clear_error() -> None:
    env = make_env()
    env.info.email.delivery = Delivery(email=_sender(free_port()))  # nothing listens there
    with pytest.raises(DeliveryFailed) as caught:
        env.info.email.register_begin("alice", address="alice@home.example", ip=None)
    assert caught.value.reason == "cannot reach the mail server" and not caught.value.permanent
    assert env.store.list_methods("alice") == []

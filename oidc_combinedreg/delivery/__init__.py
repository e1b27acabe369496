"""Delivery of codes and notices: the public types a host needs to plug in its own providers.

::

    from oidc_combinedreg.delivery import Delivery, EmailMessage

    class MyMailer:
        def send_email(self, message: EmailMessage) -> None: ...

    reg = CombinedRegistration(app, ..., delivery=Delivery(email=MyMailer(), text=..., voice=...))

The protocols (``EmailSender``, ``TextSender``, ``VoiceCaller``), the messages and
``DeliveryFailed`` load with this package; the built-in providers (``SmtpSender``,
``TwilioSender``, ``WebhookSender``, ``ConsoleSender``) load when first named, and the recording
provider for host tests is also in :mod:`oidc_combinedreg.testing`. docs/delivery.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    Channel,
    Delivery,
    DeliveryFailed,
    EmailMessage,
    EmailSender,
    TextMessage,
    TextSender,
    VoiceCaller,
    VoiceMessage,
)
from .recording import RecordingSender

if TYPE_CHECKING:
    from .console import ConsoleSender
    from .smtp import SmtpSecurity, SmtpSender
    from .twilio import TwilioSender
    from .webhook import WebhookSender

__all__ = [
    "Channel",
    "ConsoleSender",
    "Delivery",
    "DeliveryFailed",
    "EmailMessage",
    "EmailSender",
    "RecordingSender",
    "SmtpSecurity",
    "SmtpSender",
    "TextMessage",
    "TextSender",
    "TwilioSender",
    "VoiceCaller",
    "VoiceMessage",
    "WebhookSender",
]

_LAZY = {
    "ConsoleSender": "console",
    "SmtpSecurity": "smtp",
    "SmtpSender": "smtp",
    "TwilioSender": "twilio",
    "WebhookSender": "webhook",
}


def __getattr__(name: str) -> Any:
    # The providers load only when named: a deployment that uses one does not import the others.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)

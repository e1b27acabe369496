"""The small interfaces every delivery provider implements, and the messages they carry.

A provider is any object with the right method: hosts may pass their own (an SMS gateway they already
pay for) instead of the shipped ones. The shipped ones are SMTP (email), a signed HTTP webhook and
Twilio (text and voice), the console (development only) and a recording fake (tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ..exceptions import CombinedRegError

__all__ = [
    "Channel",
    "Delivery",
    "DeliveryFailed",
    "EmailMessage",
    "EmailSender",
    "TextMessage",
    "TextSender",
    "VoiceCaller",
    "VoiceMessage",
]


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"


@dataclass(frozen=True, kw_only=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    #: what the message is for (``code``, ``security_info_changed``): for logs and tests, never a secret
    tag: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TextMessage:
    #: E.164
    to: str
    body: str
    tag: str = ""
    #: the one-time code in the body, for providers that template their own message ("" if none)
    code: str = ""
    lang: str = "en"


@dataclass(frozen=True, kw_only=True, slots=True)
class VoiceMessage:
    #: E.164
    to: str
    #: what the call says (the code digit by digit, said twice)
    say: str
    tag: str = ""
    code: str = ""
    lang: str = "en"


class DeliveryFailed(CombinedRegError):
    """A message could not be handed to its provider. Nothing that depended on it was stored."""

    def __init__(self, channel: Channel, reason: str, *, permanent: bool = False) -> None:
        #: the channel that failed
        self.channel = channel
        #: short, user-safe reason (``cannot reach the mail server``, ``recipient refused``)
        self.reason = reason
        #: the provider refused this message for good (a bad recipient): retrying will not help
        self.permanent = permanent
        super().__init__(f"{channel.value} delivery failed: {reason}")


@runtime_checkable
class EmailSender(Protocol):
    def send_email(self, message: EmailMessage) -> None:
        """Hand the message over or raise :class:`DeliveryFailed`."""
        ...


@runtime_checkable
class TextSender(Protocol):
    def send_text(self, message: TextMessage) -> None:
        """Hand the text message over or raise :class:`DeliveryFailed`."""
        ...


@runtime_checkable
class VoiceCaller(Protocol):
    def call(self, message: VoiceMessage) -> None:
        """Place the call or raise :class:`DeliveryFailed`."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """The providers of one deployment; a missing one makes its methods unavailable."""

    email: EmailSender | None = None
    text: TextSender | None = None
    voice: VoiceCaller | None = None

"""A recording provider that ships in the package, for host tests (like httpx's ``MockTransport``).

It implements all three interfaces, keeps every message in order, and can be told to fail::

    sender = RecordingSender()
    reg = CombinedRegistration(app, config=..., directory=..., delivery=sender.delivery())
    ...
    code = sender.last_code(to="+14155550100")
"""

from __future__ import annotations

import re

from .base import (
    Channel,
    Delivery,
    DeliveryFailed,
    EmailMessage,
    TextMessage,
    VoiceMessage,
)

__all__ = ["RecordingSender"]

_CODE = re.compile(r"(?<![0-9])[0-9]{6,8}(?![0-9])")


class RecordingSender:
    def __init__(self) -> None:
        self.emails: list[EmailMessage] = []
        self.texts: list[TextMessage] = []
        self.calls: list[VoiceMessage] = []
        #: raised (once each) by the next sends on their channel instead of recording them
        self.failures: list[DeliveryFailed] = []

    def delivery(self) -> Delivery:
        return Delivery(email=self, text=self, voice=self)

    def fail_next(self, channel: Channel, reason: str = "provider down", **kw: bool) -> None:
        self.failures.append(DeliveryFailed(channel, reason, **kw))

    def _maybe_fail(self, channel: Channel) -> None:
        for i, failure in enumerate(self.failures):
            if failure.channel is channel:
                raise self.failures.pop(i)

    def send_email(self, message: EmailMessage) -> None:
        self._maybe_fail(Channel.EMAIL)
        self.emails.append(message)

    def send_text(self, message: TextMessage) -> None:
        self._maybe_fail(Channel.SMS)
        self.texts.append(message)

    def call(self, message: VoiceMessage) -> None:
        self._maybe_fail(Channel.VOICE)
        self.calls.append(message)

    @property
    def messages(self) -> list[EmailMessage | TextMessage | VoiceMessage]:
        return [*self.emails, *self.texts, *self.calls]

    def last_code(self, to: str | None = None) -> str:
        """The code in the newest text or call (or email) to ``to``, read from the message text."""
        candidates: list[tuple[str, str]] = [(m.to, m.body) for m in self.texts]
        candidates += [(m.to, m.say.replace(", ", "").replace(". ", "")) for m in self.calls]
        candidates += [(m.to, m.text) for m in self.emails if m.tag == "code"]
        ordered = [body for dest, body in candidates if to is None or dest == to]
        for body in reversed(ordered):
            match = _CODE.search(body)
            if match:
                return match.group(0)
        raise LookupError(f"no code sent to {to or 'anyone'}")

    def clear(self) -> None:
        self.emails.clear()
        self.texts.clear()
        self.calls.clear()

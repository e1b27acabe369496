"""Text messages and voice calls through Twilio: an optional extra.

``pip install oidc-combinedreg[twilio]`` installs the ``twilio`` library; it is imported only when
this provider is built, so deployments without it never load it.
"""

from __future__ import annotations

import importlib
from typing import Any
from xml.sax.saxutils import escape

from ..exceptions import ConfigError, ConfigProblem
from .base import Channel, DeliveryFailed, TextMessage, VoiceMessage

__all__ = ["TwilioSender"]


def _client(account_sid: str, auth_token: str) -> Any:
    try:
        rest = importlib.import_module("twilio.rest")
    except ImportError:
        raise ConfigError(
            [
                ConfigProblem(
                    "delivery.twilio",
                    "the twilio library is not installed: pip install oidc-combinedreg[twilio]",
                )
            ]
        ) from None
    return rest.Client(account_sid, auth_token)


class TwilioSender:
    """Implements ``TextSender`` and ``VoiceCaller``. ``client`` is for tests (a fake client)."""

    def __init__(
        self, *, account_sid: str, auth_token: str, from_number: str, client: Any = None
    ) -> None:
        self.from_number = from_number
        self._client = client if client is not None else _client(account_sid, auth_token)

    def send_text(self, message: TextMessage) -> None:
        try:
            self._client.messages.create(to=message.to, from_=self.from_number, body=message.body)
        except Exception as exc:  # noqa: BLE001 - twilio raises its own classes and requests' ones
            raise DeliveryFailed(Channel.SMS, _reason(exc)) from None

    def call(self, message: VoiceMessage) -> None:
        twiml = (
            f'<Response><Say language="{escape(message.lang)}">{escape(message.say)}</Say>'
            "</Response>"
        )
        try:
            self._client.calls.create(to=message.to, from_=self.from_number, twiml=twiml)
        except Exception as exc:  # noqa: BLE001 - see send_text
            raise DeliveryFailed(Channel.VOICE, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f"Twilio answered {status}" if isinstance(status, int) else "cannot reach Twilio"

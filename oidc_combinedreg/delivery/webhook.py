"""Text messages and voice calls through a signed HTTP webhook: the deployment's own gateway.

Each message is one ``POST`` of a JSON object::

    {"id": "...", "channel": "sms" | "voice", "to": "+14155550100", "text": "...",
     "code": "123456", "lang": "en", "tag": "code", "created": 1700000000}

with two headers: ``X-Combinedreg-Timestamp`` (POSIX seconds) and ``X-Combinedreg-Signature``
(``v1=`` + hex HMAC-SHA256 under the shared secret of ``timestamp + "." + body``). The receiver
checks both with :func:`verify_signature` (or the same few lines in any language) and refuses old
timestamps, so a captured request cannot be replayed later.

A 2xx answer is success. Timeouts, connection errors, 429 and 5xx are retried with exponential
backoff; other 4xx are permanent. After the last attempt :class:`DeliveryFailed` says why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .base import Channel, DeliveryFailed, TextMessage, VoiceMessage

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Combinedreg-Signature"
TIMESTAMP_HEADER = "X-Combinedreg-Timestamp"
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = 300,
) -> bool:
    """For receivers: the signature is right and the timestamp within ``tolerance`` seconds."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP_HEADER.lower(), "")
    sent = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not raw_ts.isdigit() or abs(now - int(raw_ts)) > tolerance:
        return False
    return hmac.compare_digest(sent.encode(), sign(secret, int(raw_ts), body).encode())


class WebhookSender:
    """Implements ``TextSender`` and ``VoiceCaller`` over one URL."""

    def __init__(
        self,
        *,
        url: str,
        secret: bytes,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the webhook secret needs at least 16 bytes")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock

    def send_text(self, message: TextMessage) -> None:
        self._post(
            Channel.SMS,
            {
                "channel": "sms",
                "to": message.to,
                "text": message.body,
                "code": message.code,
                "lang": message.lang,
                "tag": message.tag,
            },
        )

    def call(self, message: VoiceMessage) -> None:
        self._post(
            Channel.VOICE,
            {
                "channel": "voice",
                "to": message.to,
                "text": message.say,
                "code": message.code,
                "lang": message.lang,
                "tag": message.tag,
            },
        )

    def _post(self, channel: Channel, payload: dict[str, Any]) -> None:
        payload = {"id": secrets.token_urlsafe(12), **payload, "created": int(self._clock())}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        reason = "no attempt made"
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            status = self._attempt(body)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and status not in _RETRY_STATUS:
                raise DeliveryFailed(channel, f"the gateway answered {status}", permanent=True)
            reason = (
                "cannot reach the gateway" if status is None else f"the gateway answered {status}"
            )
        raise DeliveryFailed(channel, f"{reason} (after {self.attempts} attempts)")

    def _attempt(self, body: bytes) -> int | None:
        """The HTTP status, or None when the gateway could not be reached."""
        ts = int(self._clock())
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "oidc-combinedreg",
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(self.secret, ts, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError, TimeoutError):
            return None

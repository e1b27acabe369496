"""The console provider: writes every message to the log. Local development only.

Config validation refuses it when ``general.environment = "production"``: it would log one-time codes.
"""

from __future__ import annotations

import logging

from .base import EmailMessage, TextMessage, VoiceMessage

__all__ = ["ConsoleSender"]

log = logging.getLogger("oidc_combinedreg.delivery.console")


class ConsoleSender:
    def send_email(self, message: EmailMessage) -> None:
        log.warning("[dev email] to=%s subject=%s\n%s", message.to, message.subject, message.text)

    def send_text(self, message: TextMessage) -> None:
        log.warning("[dev text] to=%s: %s", message.to, message.body)

    def call(self, message: VoiceMessage) -> None:
        log.warning("[dev call] to=%s says: %s", message.to, message.say)

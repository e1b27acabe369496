"""The email method: register and change with a code sent to the address; reset codes. Never MFA.

Email codes prove control of an address for registration and serve password reset only (SECURITY.md
case 34): this service is deliberately not an ``MfaVerifier``. Nothing is stored until the code sent
to the new address comes back; when the address changes, the old address is told too.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..config.model import Environment
from ..delivery.base import Channel, Delivery, DeliveryFailed
from ..delivery.messages import code_email
from ..exceptions import AccessDenied, ChallengeExpired
from ..methods.email import mask_email, parse_email
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.otp_codes import CodeChallenge, Purpose
from ..notify import Change
from ..store.base import MethodRecord
from .base import ServiceContext
from .otp_codes import CodeSender
from .phone import CodeSent

__all__ = ["EmailService"]


class EmailService:
    kind = MethodKind.EMAIL

    def __init__(self, ctx: ServiceContext, delivery: Delivery) -> None:
        self.ctx = ctx
        self.delivery = delivery
        self.codes = CodeSender(ctx, ctx.config.delivery.codes)

    @property
    def available(self) -> bool:
        return self.delivery.email is not None

    def _send(
        self,
        user_id: str,
        address: str,
        purpose: Purpose,
        *,
        ip: str | None,
        previous_id: object,
        lang: str | None,
    ) -> CodeChallenge:
        policy = self.codes.policy
        ttl = policy.reset_email_ttl if purpose is Purpose.RESET else policy.ttl
        language = lang or self.ctx.config.general.default_language

        def deliver(code: str) -> None:
            if self.delivery.email is None:
                raise DeliveryFailed(Channel.EMAIL, "no email provider is configured")
            message = code_email(
                to=address,
                code=code,
                org=self.ctx.config.general.organization,
                minutes=math.ceil(ttl / 60),
                lang=language,
            )
            self.delivery.email.send_email(message)

        return self.codes.send(
            user_id=user_id,
            kind=self.kind.value,
            purpose=purpose,
            channel="email",
            destination=address,
            ip=ip,
            previous_id=previous_id,
            deliver=deliver,
            ttl=ttl,
        )

    def _sent(self, challenge: CodeChallenge) -> CodeSent:
        now = self.ctx.clock.now()
        return CodeSent(
            masked=mask_email(challenge.destination),
            channel="email",
            expires_in=max(0, math.ceil(challenge.expires - now)),
            resend_in=challenge.resend_in(self.codes.policy, now),
        )

    # -- registration and change --------------------------------------------------------------

    def register_begin(
        self,
        user_id: str,
        *,
        address: object,
        ip: str | None,
        pending: Mapping[str, Any] | None = None,
        replace_id: str | None = None,
        lang: str | None = None,
    ) -> tuple[CodeSent, dict[str, Any]]:
        """Check the address and send a code to it. Sending again to the same address (after the
        cool-down) replaces the earlier code."""
        # Development mode accepts the reserved .test domain of the demo users (issue 19.10).
        dev = self.ctx.config.general.environment is Environment.DEVELOPMENT
        email = parse_email(address, allow_test_domains=dev)
        self.ctx.check_room(user_id, self.kind, replace_id)
        previous = None
        if pending and pending.get("user_id") == user_id and pending.get("email") == email:
            previous = pending.get("challenge")
        challenge = self._send(
            user_id, email, Purpose.REGISTER, ip=ip, previous_id=previous, lang=lang
        )
        state = {
            "user_id": user_id,
            "kind": self.kind.value,
            "email": email,
            "challenge": challenge.id,
            "replace": replace_id,
        }
        return self._sent(challenge), state

    def register_complete(
        self, user_id: str, state: Mapping[str, Any] | None, code: object, *, ip: str | None
    ) -> MethodRecord:
        if not state or state.get("user_id") != user_id or state.get("kind") != self.kind.value:
            raise ChallengeExpired("no email registration in progress")
        challenge = self.codes.verify(
            user_id=user_id,
            kind=self.kind.value,
            purpose=Purpose.REGISTER,
            challenge_id=state.get("challenge"),
            code=code,
            ip=ip,
        )
        replace_id = state.get("replace")
        if isinstance(replace_id, str) and replace_id:
            return self._change(user_id, replace_id, challenge.destination, ip=ip)
        return self._add(user_id, challenge.destination, ip=ip)

    def _add(self, user_id: str, email: str, *, ip: str | None) -> MethodRecord:
        ctx = self.ctx
        now = ctx.clock.now()
        record = MethodRecord(
            id=secrets.token_urlsafe(12),
            user_id=user_id,
            kind=self.kind,
            label=mask_email(email),
            created_at=now,
            data={"email": email},
            last_used_at=now,
        )
        events, notice = ctx.method_change("method.added", Change.ADDED, record, ip=ip)
        ctx.store.add_method(record, limit=METHOD_RULES[self.kind].per_user, events=events)
        notice.send()
        return record

    def _change(self, user_id: str, method_id: str, email: str, *, ip: str | None) -> MethodRecord:
        ctx = self.ctx
        old = ctx.store.get_method(user_id, method_id)
        if old is None or old.kind is not self.kind:
            raise ChallengeExpired("the email method was deleted meanwhile")
        old_email = str(old.data.get("email", ""))
        record = replace(old, label=mask_email(email), data={**old.data, "email": email})
        # The old address hears about the change too: it is the one an attacker would replace.
        events, notice = ctx.method_change(
            "method.changed", Change.CHANGED, record, ip=ip, old_email=old_email or None
        )
        if not ctx.store.update_method(record, events=events):
            raise ChallengeExpired("the email method was deleted meanwhile")
        notice.send()
        return record

    # -- password reset codes -----------------------------------------------------------------

    def send_reset_code(
        self,
        user_id: str,
        record: MethodRecord,
        *,
        ip: str | None,
        state: Mapping[str, Any] | None = None,
        lang: str | None = None,
    ) -> tuple[CodeSent, dict[str, Any]]:
        """A password-reset code to the registered address (valid ``reset_email_ttl``, <= 24 h)."""
        if record.user_id != user_id or record.kind is not self.kind:
            raise AccessDenied("not this user's email method")
        previous = state.get("challenge") if state else None
        challenge = self._send(
            user_id,
            str(record.data["email"]),
            Purpose.RESET,
            ip=ip,
            previous_id=previous,
            lang=lang,
        )
        return self._sent(challenge), {"method_id": record.id, "challenge": challenge.id}

    def check_reset_code(
        self,
        user_id: str,
        record: MethodRecord,
        state: Mapping[str, Any],
        code: object,
        *,
        ip: str | None,
    ) -> None:
        """Raises unless ``code`` is the reset code just sent to this method's address."""
        if record.user_id != user_id or state.get("method_id") != record.id:
            raise ChallengeExpired("no code was sent for this method")
        challenge = self.codes.verify(
            user_id=user_id,
            kind=self.kind.value,
            purpose=Purpose.RESET,
            challenge_id=state.get("challenge"),
            code=code,
            ip=ip,
        )
        if challenge.destination != record.data.get("email"):
            raise ChallengeExpired("the address changed; send a new code")

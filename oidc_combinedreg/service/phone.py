"""Mobile, alternate and office phones: registration, change, MFA (text or call) and reset codes.

Nothing is bound before the code sent to the number comes back (SECURITY.md case 21); a change is a
new binding verified the same way, and the old number stays until then. The office phone is not
stored: it is read from the host's Directory each time (:func:`office_phone_record`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..delivery.base import Channel, Delivery, DeliveryFailed
from ..delivery.messages import code_text, code_voice
from ..directory import DirectoryUser
from ..exceptions import AccessDenied, ChallengeExpired, InvalidInput
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.otp_codes import CodeChallenge, Purpose
from ..methods.phone import PhoneChannel, amr_for, channels_for, mask_phone, parse_phone
from ..notify import Change
from ..store.base import AuditEvent, MethodRecord
from .base import ServiceContext
from .otp_codes import CodeSender

__all__ = ["OFFICE_PHONE_ID", "CodeSent", "PhoneService", "office_phone_record"]

#: the id of the synthetic office-phone record (never a stored method id: those are random)
OFFICE_PHONE_ID = "office-phone"


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeSent:
    """What a page shows after a code went out (never the code or the full number)."""

    masked: str
    channel: str
    expires_in: int
    resend_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "masked": self.masked,
            "channel": self.channel,
            "expires_in": self.expires_in,
            "resend_in": self.resend_in,
        }


def office_phone_record(user: DirectoryUser, *, now: float = 0.0) -> MethodRecord | None:
    """The directory's office phone as a read-only method record (not stored, not deletable)."""
    if not user.office_phone:
        return None
    try:
        e164 = parse_phone(user.office_phone, None)
    except InvalidInput:
        return None
    return MethodRecord(
        id=OFFICE_PHONE_ID,
        user_id=user.id,
        kind=MethodKind.OFFICE_PHONE,
        label=mask_phone(e164),
        created_at=now,
        data={"phone": e164, "source": "directory"},
    )


class PhoneService:
    """One phone kind. Implements ``MfaVerifier`` (``amr`` ``sms`` for a text, ``tel`` for a call)."""

    needs_start = True

    def __init__(self, ctx: ServiceContext, delivery: Delivery, kind: MethodKind) -> None:
        if kind not in (
            MethodKind.MOBILE_PHONE,
            MethodKind.ALTERNATE_PHONE,
            MethodKind.OFFICE_PHONE,
        ):
            raise ValueError(f"not a phone kind: {kind}")
        self.ctx = ctx
        self.delivery = delivery
        self.kind: MethodKind = kind
        self.codes = CodeSender(ctx, ctx.config.delivery.codes)

    # -- channels -----------------------------------------------------------------------------

    def channels(self) -> tuple[PhoneChannel, ...]:
        """The channels this kind may use that have a provider configured."""
        have = {PhoneChannel.SMS: self.delivery.text, PhoneChannel.VOICE: self.delivery.voice}
        return tuple(c for c in channels_for(self.kind) if have[c] is not None)

    def _channel(self, raw: object) -> PhoneChannel:
        allowed = channels_for(self.kind)
        if raw in (None, "") and allowed:
            return allowed[0]
        if not isinstance(raw, str) or raw not in {c.value for c in allowed}:
            raise InvalidInput("channel", "Choose how to get the code.")
        return PhoneChannel(raw)

    def _deliver(self, channel: PhoneChannel, to: str, code: str, lang: str) -> None:
        org = self.ctx.config.general.organization
        minutes = math.ceil(self.ctx.config.delivery.codes.ttl / 60)
        if channel is PhoneChannel.SMS:
            if self.delivery.text is None:
                raise DeliveryFailed(Channel.SMS, "no text message provider is configured")
            self.delivery.text.send_text(
                code_text(to=to, code=code, org=org, minutes=minutes, lang=lang)
            )
        else:
            if self.delivery.voice is None:
                raise DeliveryFailed(Channel.VOICE, "no voice call provider is configured")
            self.delivery.voice.call(code_voice(to=to, code=code, org=org, lang=lang))

    def _send(
        self,
        user_id: str,
        phone: str,
        channel: PhoneChannel,
        purpose: Purpose,
        *,
        ip: str | None,
        previous_id: object,
        lang: str | None,
    ) -> CodeChallenge:
        language = lang or self.ctx.config.general.default_language
        return self.codes.send(
            user_id=user_id,
            kind=self.kind.value,
            purpose=purpose,
            channel=channel.value,
            destination=phone,
            ip=ip,
            previous_id=previous_id,
            deliver=lambda code: self._deliver(channel, phone, code, language),
        )

    def _sent(self, challenge: CodeChallenge) -> CodeSent:
        now = self.ctx.clock.now()
        return CodeSent(
            masked=mask_phone(challenge.destination),
            channel=challenge.channel,
            expires_in=max(0, math.ceil(challenge.expires - now)),
            resend_in=challenge.resend_in(self.codes.policy, now),
        )

    # -- registration and change --------------------------------------------------------------

    def register_begin(
        self,
        user_id: str,
        *,
        number: object,
        region: object,
        channel: object,
        ip: str | None,
        pending: Mapping[str, Any] | None = None,
        replace_id: str | None = None,
        lang: str | None = None,
    ) -> tuple[CodeSent, dict[str, Any]]:
        """Parse the number and send a code to it; nothing is stored until the code comes back.

        ``replace_id`` changes that existing method instead of adding one. ``pending`` is the state
        of an earlier send (a resend to the same number, after the cool-down, replaces its code).
        """
        if not METHOD_RULES[self.kind].user_registers:
            raise AccessDenied(f"{self.kind.value} is not registered by users")
        phone = parse_phone(number, region, allowed_regions=self.ctx.config.phone.allowed_regions)
        chosen = self._channel(channel)
        self.ctx.check_room(user_id, self.kind, replace_id)
        previous = None
        if pending and pending.get("user_id") == user_id and pending.get("kind") == self.kind.value:
            previous = pending.get("challenge")
        challenge = self._send(
            user_id, phone, chosen, Purpose.REGISTER, ip=ip, previous_id=previous, lang=lang
        )
        state = {
            "user_id": user_id,
            "kind": self.kind.value,
            "phone": phone,
            "channel": chosen.value,
            "challenge": challenge.id,
            "replace": replace_id,
        }
        return self._sent(challenge), state

    def resend(
        self,
        user_id: str,
        state: Mapping[str, Any] | None,
        *,
        ip: str | None,
        channel: object = None,
        lang: str | None = None,
    ) -> tuple[CodeSent, dict[str, Any]]:
        """Send again (after the cool-down), by the same or the other channel."""
        if not state or state.get("user_id") != user_id or state.get("kind") != self.kind.value:
            raise ChallengeExpired("no phone registration in progress")
        chosen = self._channel(channel or state.get("channel"))
        phone = str(state["phone"])
        challenge = self._send(
            user_id,
            phone,
            chosen,
            Purpose.REGISTER,
            ip=ip,
            previous_id=state.get("challenge"),
            lang=lang,
        )
        return self._sent(challenge), {**state, "channel": chosen.value, "challenge": challenge.id}

    def register_complete(
        self, user_id: str, state: Mapping[str, Any] | None, code: object, *, ip: str | None
    ) -> MethodRecord:
        """Bind the number (or change the method) after the right code."""
        if not state or state.get("user_id") != user_id or state.get("kind") != self.kind.value:
            raise ChallengeExpired("no phone registration in progress")
        challenge = self.codes.verify(
            user_id=user_id,
            kind=self.kind.value,
            purpose=Purpose.REGISTER,
            challenge_id=state.get("challenge"),
            code=code,
            ip=ip,
        )
        phone = challenge.destination
        replace_id = state.get("replace")
        if isinstance(replace_id, str) and replace_id:
            return self._change(user_id, replace_id, phone, challenge.channel, ip=ip)
        return self._add(user_id, phone, challenge.channel, ip=ip)

    def _add(self, user_id: str, phone: str, channel: str, *, ip: str | None) -> MethodRecord:
        ctx = self.ctx
        now = ctx.clock.now()
        record = MethodRecord(
            id=secrets.token_urlsafe(12),
            user_id=user_id,
            kind=self.kind,
            label=mask_phone(phone),
            created_at=now,
            data={"phone": phone, "verified_by": channel},
            last_used_at=now,
        )
        events, notice = ctx.method_change(
            "method.added", Change.ADDED, record, ip=ip, channel=channel
        )
        ctx.store.add_method(record, limit=METHOD_RULES[self.kind].per_user, events=events)
        notice.send()
        return record

    def _change(
        self, user_id: str, method_id: str, phone: str, channel: str, *, ip: str | None
    ) -> MethodRecord:
        ctx = self.ctx
        old = ctx.store.get_method(user_id, method_id)
        if old is None or old.kind is not self.kind:
            raise ChallengeExpired("the phone method was deleted meanwhile")
        record = replace(
            old, label=mask_phone(phone), data={**old.data, "phone": phone, "verified_by": channel}
        )
        events, notice = ctx.method_change("method.changed", Change.CHANGED, record, ip=ip)
        if not ctx.store.update_method(record, events=events):
            raise ChallengeExpired("the phone method was deleted meanwhile")
        notice.send()
        return record

    # -- verification (MfaVerifier) -----------------------------------------------------------

    def start(
        self, user: DirectoryUser, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> dict[str, Any]:
        """Text or call (``state["via"]``, set from the page's choice); a second start resends."""
        sent, new_state = self.send_code(
            user.id, record, Purpose.MFA, channel=state.get("via"), ip=ip, state=state
        )
        state.update(new_state)
        return sent.as_dict()

    def verify(
        self,
        user: DirectoryUser,
        record: MethodRecord,
        response: Mapping[str, Any],
        state: dict[str, Any],
        *,
        ip: str | None,
    ) -> tuple[str, ...]:
        success = self.ctx.event(
            "mfa.succeeded", user.id, "success", ip=ip, kind=self.kind.value, method_id=record.id
        )
        code = response.get("code")
        return self.check_code(user.id, record, state, code, Purpose.MFA, ip=ip, events=[success])

    # -- codes for MFA and password reset -----------------------------------------------------

    def send_code(
        self,
        user_id: str,
        record: MethodRecord,
        purpose: Purpose,
        *,
        channel: object,
        ip: str | None,
        state: Mapping[str, Any] | None = None,
        lang: str | None = None,
    ) -> tuple[CodeSent, dict[str, Any]]:
        """Send a code to a registered number: for MFA, or (``Purpose.RESET``) a password reset.

        Returns what the page shows and the state to keep server side for :meth:`check_code`.
        """
        if record.user_id != user_id or record.kind is not self.kind:
            raise AccessDenied("not this user's phone method")
        chosen = self._channel(channel)
        phone = str(record.data["phone"])
        previous = state.get("challenge") if state else None
        challenge = self._send(
            user_id, phone, chosen, purpose, ip=ip, previous_id=previous, lang=lang
        )
        return self._sent(challenge), {
            "method_id": record.id,
            "channel": chosen.value,
            "challenge": challenge.id,
        }

    def check_code(
        self,
        user_id: str,
        record: MethodRecord,
        state: Mapping[str, Any],
        code: object,
        purpose: Purpose,
        *,
        ip: str | None,
        events: Sequence[AuditEvent] = (),
    ) -> tuple[str, ...]:
        """Check a code from :meth:`send_code`; returns the ``amr`` it proves (``sms`` or ``tel``).

        The phone's use (``last_used_at``) is stored with ``events`` (the caller's success) in
        one write; a phone removed or reported since it was read passes nothing."""
        if record.user_id != user_id or state.get("method_id") != record.id:
            raise ChallengeExpired("no code was sent for this method")
        challenge = self.codes.verify(
            user_id=user_id,
            kind=self.kind.value,
            purpose=purpose,
            challenge_id=state.get("challenge"),
            code=code,
            ip=ip,
        )
        if challenge.destination != record.data.get("phone"):
            # The number changed after the code was sent: the code proves the old number only.
            raise ChallengeExpired("the number changed; send a new code")
        store = self.ctx.store
        if record.id == OFFICE_PHONE_ID:  # the Directory's number: no stored record to mark
            for event in events:
                store.append_audit(event)
        elif not store.record_use(user_id, record.id, self.ctx.clock.now(), events=events):
            raise ChallengeExpired("the phone method was removed")
        return (amr_for(PhoneChannel(challenge.channel)),)

    # -- the office phone ---------------------------------------------------------------------

    def directory_record(self, user_id: str) -> MethodRecord | None:
        """The office phone from the Directory as a synthetic, read-only record, when the policy
        allows the method for this user and a voice provider can call it; else None."""
        ctx = self.ctx
        if self.kind is not MethodKind.OFFICE_PHONE or ctx.directory is None:
            return None
        if self.delivery.voice is None:
            return None
        user = ctx.directory.get_user(user_id)
        if user is None or not ctx.config.policies.method_allowed(self.kind, user.id, user.groups):
            return None
        return office_phone_record(user)

"""Sending and checking out-of-band codes over the store: quotas, single use, throttling, audit.

Shared by the phone and email services. The pending challenge lives in the store (``otp:<id>``,
expiring); the caller keeps only its id in the session. A code is used once: a correct code takes the
challenge atomically, so two parallel requests with the same code cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Callable

from ..delivery.base import DeliveryFailed
from ..exceptions import ChallengeExpired, CodeReused, InvalidInput, RateLimited, VerificationFailed
from ..methods.otp_codes import (
    CodeChallenge,
    CodePolicy,
    Purpose,
    check_code,
    issue_code,
    send_quota_keys,
)
from .base import ServiceContext
from .refusal_audit import RefusalAudit

__all__ = ["CodeSender"]

#: the store keeps a challenge a little past its expiry so an expired code reads "expired"
_GRACE = 60


def _key(challenge_id: str) -> str:
    return f"otp:{challenge_id}"


class CodeSender:
    def __init__(self, ctx: ServiceContext, policy: CodePolicy) -> None:
        self.ctx = ctx
        self.policy = policy
        #: the anonymous reset's refused sends: audited once per address and window
        self.refusals = RefusalAudit(ctx.store, "code-send")

    def load(self, challenge_id: object) -> CodeChallenge | None:
        if not isinstance(challenge_id, str) or not challenge_id:
            return None
        data = self.ctx.store.peek_challenge(_key(challenge_id))
        return CodeChallenge.from_dict(data) if data else None

    def _count_send(
        self,
        user_id: str,
        destination: str,
        ip: str | None,
        kind: str,
        purpose: Purpose,
        channel: str,
    ) -> None:
        """Spend one send of each budget of this purpose; a refusal is audited (never the
        destination in clear: bombing one number shows as refusals of its owner's sends). At
        the password reset, which anyone can start for any account, once per address and
        window (decision 188): each repeat would be a row in the log and on the owner's
        Recent activity page."""
        store = self.ctx.store
        for key, limit, scope in send_quota_keys(
            self.policy, user_id=user_id, destination=destination, ip=ip, purpose=purpose
        ):
            if store.incr(key, ttl=self.policy.window) > limit:
                extra = {}
                if purpose is Purpose.RESET:
                    once = self.refusals.detail(ip or "-")
                    if once is None:  # a repeat within the window: counted, not written
                        raise RateLimited(retry_after=self.policy.window, scope=scope)
                    extra = once
                self.ctx.audit(
                    "code.send_refused",
                    user_id,
                    "blocked",
                    ip=ip,
                    kind=kind,
                    scope=scope,
                    purpose=purpose.value,
                    channel=channel,
                    **extra,
                )
                raise RateLimited(retry_after=self.policy.window, scope=scope)

    def send(
        self,
        *,
        user_id: str,
        kind: str,
        purpose: Purpose,
        channel: str,
        destination: str,
        ip: str | None,
        deliver: Callable[[str], None],
        previous_id: object = None,
        ttl: int | None = None,
    ) -> CodeChallenge:
        """Issue (or re-issue, after the cool-down) a code and hand it to ``deliver``.

        Raises ``RateLimited`` (cool-down or quota) or ``DeliveryFailed``; after a failed delivery
        nothing is pending (the challenge is dropped).
        """
        ctx = self.ctx
        now = ctx.clock.now()
        previous = self.load(previous_id)
        if previous is not None and previous.destination != destination:
            previous = None
        if previous is not None and (wait := previous.resend_in(self.policy, now)):
            # Checked before the quotas, so clicking "send again" early does not use them up.
            raise RateLimited(retry_after=wait, scope="resend")
        self._count_send(user_id, destination, ip, kind, purpose, channel)
        code, challenge = issue_code(
            policy=self.policy,
            hasher=ctx.codes,
            user_id=user_id,
            purpose=purpose,
            channel=channel,
            destination=destination,
            now=now,
            previous=previous,
            ttl=ttl,
        )
        lifetime = challenge.expires - now + _GRACE
        ctx.store.put_challenge(_key(challenge.id), challenge.to_dict(), ttl=lifetime)
        try:
            deliver(code)
        except DeliveryFailed as exc:
            ctx.store.take_challenge(_key(challenge.id))
            ctx.audit(
                "code.send_failed",
                user_id,
                "failure",
                ip=ip,
                kind=kind,
                channel=channel,
                purpose=purpose.value,
                reason=exc.reason,
            )
            raise
        ctx.audit(
            "code.sent",
            user_id,
            "success",
            ip=ip,
            kind=kind,
            channel=channel,
            purpose=purpose.value,
            sends=challenge.sends,
        )
        return challenge

    def verify(
        self,
        *,
        user_id: str,
        kind: str,
        purpose: Purpose,
        challenge_id: object,
        code: object,
        ip: str | None,
    ) -> CodeChallenge:
        """The challenge the code matched, now used up. Throttled before anything is checked."""
        ctx = self.ctx
        ctx.throttle.attempt(user_id, ip)
        challenge = self.load(challenge_id)
        if challenge is None:
            raise ChallengeExpired("no code is pending; send a new one")
        try:
            check_code(
                challenge,
                code,
                policy=self.policy,
                hasher=ctx.codes,
                user_id=user_id,
                purpose=purpose,
                now=ctx.clock.now(),
            )
        except (VerificationFailed, InvalidInput) as exc:
            ctx.throttle.failed(user_id, ip)
            reason = "code" if isinstance(exc, VerificationFailed) else "malformed"
            ctx.audit(
                _FAILED_EVENT[purpose],
                user_id,
                "failure",
                ip=ip,
                kind=kind,
                reason=reason,
            )
            raise
        taken = ctx.store.take_challenge(_key(challenge.id))
        if taken is None or taken.get("code_hash") != challenge.code_hash:
            # Used by a parallel request between our read and take, or replaced by a resend.
            ctx.throttle.failed(user_id, ip)
            raise CodeReused("this code was already used")
        ctx.throttle.succeeded(user_id)
        return challenge


_FAILED_EVENT = {
    Purpose.REGISTER: "method.add_failed",
    Purpose.MFA: "mfa.failed",
    Purpose.RESET: "sspr.code_failed",
}

"""Out-of-band one-time codes (text, call, email): issuing, resending and checking. No I/O.

Rules (NIST SP 800-63B, SECURITY.md cases 32-35): 6-8 CSPRNG digits; stored only as a peppered hash
bound to the challenge, the user, the purpose and the destination; single use (the service takes the
challenge atomically on success); expiring (10 minutes by default; email codes for a password reset
at most 24 hours). A resend is allowed after a cool-down, replaces the old code (same challenge id,
so the old code stops working) and keeps the failure count. Send quotas per user, destination and
client IP per hour are counted by the service on the store's atomic counters, with the keys made here.

Each purpose spends its own budget (SECURITY.md case 58): a password reset is started by anyone who
types a user name, so its sends count on ``send:reset:...`` keys and never use up the owner's MFA
sends; registering a number (maybe someone else's) counts on a destination key of its own too. Per
destination and hour, calls and texts of all flows together are thus bounded by the sum of the three
budgets (10 + 10 + 3 by default).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ..config.reader import Reader
from ..crypto import CodeHasher, bind_context, random_digits, random_id
from ..exceptions import ChallengeExpired, RateLimited, VerificationFailed
from .codes import parse_code

__all__ = [
    "CodeChallenge",
    "CodePolicy",
    "Purpose",
    "check_code",
    "issue_code",
    "read_code_policy",
    "send_quota_keys",
]


class Purpose(StrEnum):
    REGISTER = "register"
    MFA = "mfa"
    RESET = "reset"


@dataclass(frozen=True, kw_only=True, slots=True)
class CodePolicy:
    """The ``[delivery.codes]`` table."""

    digits: int = 6
    #: seconds a code stays valid
    ttl: int = 600
    #: seconds before "send again" is allowed
    resend_after: int = 60
    #: sends allowed per hour, per user, per destination (number or address), per client IP;
    #: sized from one person's ordinary hour (docs/delivery.md, "Send budgets"; issue 23.7)
    sends_per_user: int = 20
    sends_per_destination: int = 10
    sends_per_ip: int = 100
    #: validity of an email code for a password reset (NIST: at most 24 hours)
    reset_email_ttl: int = 600
    #: sends per hour of password reset flows (anonymous), per account, destination, client IP
    reset_sends_per_user: int = 5
    reset_sends_per_destination: int = 3
    reset_sends_per_ip: int = 20
    window: int = 3600


def read_code_policy(r: Reader) -> CodePolicy:
    base = CodePolicy()
    policy = CodePolicy(
        digits=r.integer("digits", base.digits, min=6, max=8),
        ttl=r.integer("ttl", base.ttl, min=60, max=1800),
        resend_after=r.integer("resend_after", base.resend_after, min=10, max=600),
        sends_per_user=r.integer("sends_per_user", base.sends_per_user, min=1, max=1000),
        sends_per_destination=r.integer(
            "sends_per_destination", base.sends_per_destination, min=1, max=1000
        ),
        sends_per_ip=r.integer("sends_per_ip", base.sends_per_ip, min=1, max=100000),
        reset_email_ttl=r.integer("reset_email_ttl", base.reset_email_ttl, min=60, max=86400),
        reset_sends_per_user=r.integer(
            "reset_sends_per_user", base.reset_sends_per_user, min=1, max=100
        ),
        reset_sends_per_destination=r.integer(
            "reset_sends_per_destination", base.reset_sends_per_destination, min=1, max=100
        ),
        reset_sends_per_ip=r.integer(
            "reset_sends_per_ip", base.reset_sends_per_ip, min=1, max=100000
        ),
    )
    r.done()
    return policy


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeChallenge:
    """One pending code. JSON-safe through :meth:`to_dict`; never holds the code itself."""

    id: str
    user_id: str
    purpose: Purpose
    #: ``sms`` / ``voice`` / ``email``
    channel: str
    #: E.164 number or normalized address
    destination: str
    code_hash: str
    sent_at: float
    expires: float
    #: how many codes this challenge has sent (resends included)
    sends: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeChallenge:
        return cls(
            id=str(data["id"]),
            user_id=str(data["user_id"]),
            purpose=Purpose(str(data["purpose"])),
            channel=str(data["channel"]),
            destination=str(data["destination"]),
            code_hash=str(data["code_hash"]),
            sent_at=float(data["sent_at"]),
            expires=float(data["expires"]),
            sends=int(data.get("sends", 1)),
        )

    def resend_in(self, policy: CodePolicy, now: float) -> int:
        """Seconds until "send again" is allowed (0 = now)."""
        return max(0, math.ceil(self.sent_at + policy.resend_after - now))


def _context(
    challenge_id: str, user_id: str, purpose: Purpose, channel: str, destination: str
) -> bytes:
    # The hash is bound to everything the code was sent for: a code sent for one number, user or
    # purpose never verifies another, even if an attacker swapped challenge records.
    return bind_context("otp", challenge_id, user_id, purpose.value, channel, destination)


def issue_code(
    *,
    policy: CodePolicy,
    hasher: CodeHasher,
    user_id: str,
    purpose: Purpose,
    channel: str,
    destination: str,
    now: float,
    previous: CodeChallenge | None = None,
    ttl: int | None = None,
) -> tuple[str, CodeChallenge]:
    """A new code and its challenge. With ``previous`` (same user and purpose) it is a resend:
    refused during the cool-down, else the old code is replaced under the same challenge id (the
    failure counters, keyed by user and challenge id, carry on)."""
    challenge_id = random_id()
    sends = 1
    if previous is not None and previous.user_id == user_id and previous.purpose is purpose:
        wait = previous.resend_in(policy, now)
        if wait:
            raise RateLimited(retry_after=wait, scope="resend")
        challenge_id, sends = previous.id, previous.sends + 1
    code = random_digits(policy.digits)
    code_hash = hasher.hash(code, _context(challenge_id, user_id, purpose, channel, destination))
    challenge = CodeChallenge(
        id=challenge_id,
        user_id=user_id,
        purpose=purpose,
        channel=channel,
        destination=destination,
        code_hash=code_hash,
        sent_at=now,
        expires=now + (ttl if ttl is not None else policy.ttl),
        sends=sends,
    )
    return code, challenge


def check_code(
    challenge: CodeChallenge,
    code: object,
    *,
    policy: CodePolicy,
    hasher: CodeHasher,
    user_id: str,
    purpose: Purpose,
    now: float,
) -> None:
    """Raise unless ``code`` is this challenge's code, for this user and purpose, in time."""
    if challenge.user_id != user_id or challenge.purpose is not purpose:
        raise ChallengeExpired("no code was sent for this")
    if now >= challenge.expires:
        raise ChallengeExpired("the code expired; send a new one")
    value = parse_code(code, policy.digits)
    context = _context(challenge.id, user_id, purpose, challenge.channel, challenge.destination)
    if not hasher.verify(challenge.code_hash, value, context):
        raise VerificationFailed("wrong code")


def _digest(value: str) -> str:
    # Counter keys name a destination without storing the number or address in clear.
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def send_quota_keys(
    policy: CodePolicy, *, user_id: str, destination: str, ip: str | None, purpose: Purpose
) -> list[tuple[str, int, str]]:
    """``(counter key, limit per window, scope)`` for each send quota that applies.

    Sign-in (MFA) and registration are signed-in flows and share the user's and the IP's budget;
    registration has a destination budget apart, since the number typed may be someone else's.
    A password reset spends only budgets of its own (``reset-`` scopes)."""
    dest = _digest(destination)
    if purpose is Purpose.RESET:
        keys = [
            (f"send:reset:user:{user_id}", policy.reset_sends_per_user, "reset-send-user"),
            (
                f"send:reset:dest:{dest}",
                policy.reset_sends_per_destination,
                "reset-send-destination",
            ),
        ]
        if ip is not None:
            keys.append((f"send:reset:ip:{ip}", policy.reset_sends_per_ip, "reset-send-ip"))
        return keys
    dest_key = f"send:dest:{dest}" if purpose is Purpose.MFA else f"send:register:dest:{dest}"
    keys = [
        (f"send:user:{user_id}", policy.sends_per_user, "send-user"),
        (dest_key, policy.sends_per_destination, "send-destination"),
    ]
    if ip is not None:
        keys.append((f"send:ip:{ip}", policy.sends_per_ip, "send-ip"))
    return keys

"""Authenticator apps (TOTP, RFC 6238) with pyotp: registration and verification, no I/O.

The caller keeps state (the pending secret) and persists the result; replay protection rests on the
time step this module returns and the store's compare-and-set ``advance_counter``.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from typing import Any

import pyotp

from ..exceptions import ChallengeExpired, CodeReused, VerificationFailed
from .codes import hotp, parse_code
from .kinds import METHOD_RULES, MethodKind

__all__ = ["TotpMethod", "TotpSetup"]

PERIOD = 30
DIGITS = 6


@dataclass(frozen=True, kw_only=True, slots=True)
class TotpSetup:
    """What the user needs to add the account to an app: the QR payload and the manual-entry text."""

    secret: str
    account_name: str
    issuer: str
    uri: str


class TotpMethod:
    """TOTP with SHA-1, 6 digits, 30 seconds (what every authenticator app supports)."""

    kind = MethodKind.TOTP
    rules = METHOD_RULES[MethodKind.TOTP]

    def __init__(self, *, issuer: str, drift_steps: int = 1, pending_ttl: int = 900) -> None:
        self.issuer = issuer
        self.drift_steps = drift_steps
        self.pending_ttl = pending_ttl

    # -- registration -------------------------------------------------------------------------

    def register_begin(
        self, *, account_name: str, now: float, secret: str | None = None
    ) -> tuple[TotpSetup, dict[str, Any]]:
        """A new random 160-bit secret; ``state`` must be kept server side, tied to the session."""
        secret = secret or pyotp.random_base32(32)
        uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=self.issuer)
        setup = TotpSetup(secret=secret, account_name=account_name, issuer=self.issuer, uri=uri)
        state = {"secret": secret, "account_name": account_name, "expires": now + self.pending_ttl}
        return setup, state

    def setup_from_state(self, state: dict[str, Any]) -> TotpSetup:
        """The same setup again (a reload shows the same QR code, not a new secret)."""
        secret = str(state["secret"])
        account = str(state["account_name"])
        uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=self.issuer)
        return TotpSetup(secret=secret, account_name=account, issuer=self.issuer, uri=uri)

    def register_complete(
        self, state: dict[str, Any], code: object, *, now: float
    ) -> tuple[str, int]:
        """Check the first code; returns ``(secret, time_step)`` to persist (the step is "used")."""
        if float(state.get("expires", 0)) < now:
            raise ChallengeExpired("the setup expired; start again")
        secret = str(state["secret"])
        return secret, self.match_step(secret, code, now=now)

    # -- verification -------------------------------------------------------------------------

    def authenticate_complete(
        self, secret: str, code: object, *, last_step: int, now: float
    ) -> int:
        """The time step the code matched. Raises ``CodeReused`` for a step at or before the last used."""
        step = self.match_step(secret, code, now=now)
        if step <= last_step:
            raise CodeReused("this code was already used; wait for the next one")
        return step

    def match_step(self, secret: str, code: object, *, now: float) -> int:
        value = parse_code(code, DIGITS)
        key = secret_bytes(secret)
        current = int(now) // PERIOD
        # Newest first, so that with drift the most recent acceptable step is the one recorded.
        for step in range(current + self.drift_steps, current - self.drift_steps - 1, -1):
            if hmac.compare_digest(hotp(key, step), value):
                return step
        raise VerificationFailed("wrong code")


#: RFC 4648 base32's alphabet (either case) as the digits ``int(..., 32)`` reads
_BASE32_DIGITS = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz",
    "0123456789abcdefghijklmnopqrstuv0123456789abcdefghijklmnop",
)


def secret_bytes(secret: str) -> bytes:
    """The key of a base32 secret, padded as authenticator apps leave it out: what pyotp's
    ``byte_secret`` returns, without building a ``TOTP`` (whose constructor decodes it too).

    ``base64.b32decode`` is Python code, a sixtieth of an MFA verify: a secret of base32
    letters alone (ours: 32 of them) is one number in base 32 instead, its bits past the last
    whole byte dropped as ``b32decode`` drops them. Anything else (padding, other characters,
    a length base32 cannot have) goes to ``b32decode``, which decodes or refuses it."""
    size = len(secret)
    if (
        size
        and size % 8 in (0, 2, 4, 5, 7)
        and secret.isascii()
        and secret.isalnum()
        and not any(digit in secret for digit in "0189")
    ):
        number = int(secret.translate(_BASE32_DIGITS), 32)
        return (number >> size * 5 % 8).to_bytes(size * 5 // 8, "big")
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)

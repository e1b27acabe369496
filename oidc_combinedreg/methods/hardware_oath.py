"""Hardware OATH tokens (RFC 4226 HOTP, RFC 6238 TOTP): code checks and HOTP resync. No I/O.

Tokens are imported by an admin (``methods/token_import.py``), never registered by users; a user
activates an assigned token by typing its current code. The counter kept per token (the store's
compare-and-set ``advance_counter``) means:

* TOTP: the last time step used (a code for that step or an older one is a replay);
* HOTP: the next counter value the token will show. A code is looked for in
  ``[counter, counter + hotp_window)`` only, so old codes are refused, and the counter moves
  only on success (SECURITY.md case 28). A token pressed more often than the window needs two
  consecutive codes to resynchronize (RFC 4226 section 7.4).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..exceptions import CodeReused, InvalidInput, VerificationFailed
from .codes import hotp, parse_code
from .kinds import METHOD_RULES, MethodKind

__all__ = ["HardwareOathMethod", "OathHash", "OathKind", "OathParams"]


class OathKind(StrEnum):
    TOTP = "totp"
    HOTP = "hotp"


class OathHash(StrEnum):
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"


@dataclass(frozen=True, kw_only=True, slots=True)
class OathParams:
    """How a token computes its codes (stored, not secret, in the method's ``data``)."""

    kind: OathKind = OathKind.TOTP
    digits: int = 6
    #: TOTP step in seconds (30 or 60 on the tokens sold today)
    period: int = 30
    hash: OathHash = OathHash.SHA1

    def __post_init__(self) -> None:
        if self.digits not in (6, 7, 8):
            raise InvalidInput("digits", f"expected 6, 7 or 8 digits, got {self.digits}")
        if self.kind is OathKind.TOTP and self.period not in (30, 60):
            raise InvalidInput("period", f"expected a time step of 30 or 60, got {self.period}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "oath": self.kind.value,
            "digits": self.digits,
            "period": self.period,
            "hash": self.hash.value,
        }

    @classmethod
    def from_dict(cls, data: Any) -> OathParams:
        return cls(
            kind=OathKind(data.get("oath", "totp")),
            digits=int(data.get("digits", 6)),
            period=int(data.get("period", 30)),
            hash=OathHash(data.get("hash", "sha1")),
        )


def code_at(secret: bytes, params: OathParams, counter: int) -> str:
    """The code for an HOTP counter value or a TOTP time step (tests and the resync search)."""
    return hotp(secret, counter, params.digits, params.hash.value)


class HardwareOathMethod:
    """Code checks for one imported token; the caller stores the counter this returns."""

    kind = MethodKind.HARDWARE_OATH
    rules = METHOD_RULES[MethodKind.HARDWARE_OATH]

    def __init__(
        self, *, hotp_window: int = 10, resync_window: int = 200, totp_drift_steps: int = 1
    ) -> None:
        self.hotp_window = hotp_window
        self.resync_window = resync_window
        self.totp_drift_steps = totp_drift_steps

    def authenticate_complete(
        self, secret: bytes, params: OathParams, code: object, *, counter: int, now: float
    ) -> int:
        """The new counter to store (see the module docstring for what it means per kind)."""
        value = parse_code(code, params.digits)
        if params.kind is OathKind.HOTP:
            return self._match_hotp(secret, params, value, counter)
        step = self._match_totp(secret, params, value, now)
        if step <= counter:
            raise CodeReused("this code was already used; wait for the next one")
        return step

    def resync(
        self, secret: bytes, params: OathParams, first: object, second: object, *, counter: int
    ) -> int:
        """HOTP only: two consecutive codes found ahead of ``counter``; returns the new counter."""
        if params.kind is not OathKind.HOTP:
            raise InvalidInput("code", "only event-based (HOTP) tokens are resynchronized")
        one, two = (
            parse_code(first, params.digits),
            parse_code(second, params.digits, field="code2"),
        )
        for c in range(counter, counter + self.resync_window):
            if _same(code_at(secret, params, c), one) and _same(
                code_at(secret, params, c + 1), two
            ):
                return c + 2
        raise VerificationFailed("resync")

    def _match_hotp(self, secret: bytes, params: OathParams, value: str, counter: int) -> int:
        for c in range(counter, counter + self.hotp_window):
            if _same(code_at(secret, params, c), value):
                return c + 1
        raise VerificationFailed("wrong code")

    def _match_totp(self, secret: bytes, params: OathParams, value: str, now: float) -> int:
        current = int(now) // params.period
        drift = self.totp_drift_steps
        # Newest first, so the most recent acceptable step is the one recorded as used.
        for step in range(current + drift, current - drift - 1, -1):
            if _same(code_at(secret, params, step), value):
                return step
        raise VerificationFailed("wrong code")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))

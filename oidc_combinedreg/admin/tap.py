"""Temporary Access Pass: an admin-issued, time-limited pass that signs a user in (in place of
the password) so they can register methods, even when they have none or lost them.

* **Time-limited**: 10 minutes to 30 days (Entra's bounds; ``[admin.tap]`` narrows them).
* **One-time or multi-use**. A one-time pass is consumed with the store's atomic
  ``take_challenge``: two parallel sign-ins with the same pass, exactly one succeeds.
* **Hashed at rest** with Argon2id (:class:`~oidc_combinedreg.crypto.SecretHasher`): a pass is
  typed by a person, so it is shorter than a token, and an Argon2 hash keeps a copy of the store
  useless for an offline search. **Shown once**: :meth:`TapService.issue` returns the clear pass;
  nothing can read it back.
* **One pass per user**: issuing a new one replaces the old (as in Entra).

Storage: the pass lives under ``tap:<user_id>`` as a challenge whose TTL outlives its expiry by a
day (so a late use is audited as ``expired``, not as ``none``); when it is used up or revoked a
small marker ``tap-ended:<user_id>`` remembers why, for the audit reason of later attempts.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..crypto import SecretHasher, random_id
from ..directory import DirectoryUser
from ..exceptions import InvalidInput, RateLimited, VerificationFailed
from ..service.base import ServiceContext
from ..service.refusal_audit import RefusalAudit
from ..throttle import WindowedThrottle, WindowLimits
from .config import TAP_MIN_MINUTES, TapConfig

__all__ = [
    "TAP_AMR",
    "IssuedTap",
    "TapService",
    "TapStatus",
    "format_code",
    "normalize_code",
]

#: RFC 8176 has no value for a Temporary Access Pass. A pass is a one-time (or few-times)
#: secret issued out of band by an admin, so "otp"; and it stands for a full MFA sign-in (Entra
#: treats it as strong authentication), so "mfa". There is no "pwd": no password was used.
TAP_AMR = ("otp", "mfa")

#: no 0/O, 1/I: a pass is read aloud and typed; 32 symbols = 5 bits each
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 16 symbols = 80 bits
LENGTH = 16
_GRACE = 86400
_ENDED_TTL = 30 * 86400


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuedTap:
    """A new pass: ``code`` is shown to the admin once and never stored in clear."""

    id: str
    user_id: str
    code: str
    created_at: float
    expires_at: float
    one_time: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class TapStatus:
    """What an admin may see about a user's pass (never the code or its hash)."""

    id: str
    created_at: float
    expires_at: float
    one_time: bool
    issued_by: str
    usable: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": int(self.created_at),
            "expires_at": int(self.expires_at),
            "one_time": self.one_time,
            "issued_by": self.issued_by,
            "usable": self.usable,
        }


def normalize_code(text: str) -> str:
    """What the user typed, without spaces and dashes, upper case."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _key(user_id: str) -> str:
    return f"tap:{user_id}"


def _ended_key(user_id: str) -> str:
    return f"tap-ended:{user_id}"


class TapService:
    """Issue, verify and revoke Temporary Access Passes over the store."""

    def __init__(
        self, ctx: ServiceContext, config: TapConfig, hasher: SecretHasher | None = None
    ) -> None:
        self.ctx = ctx
        self.config = config
        #: Argon2id; tests swap in ``fast_hasher_for_tests()``
        self.hasher = hasher or SecretHasher()
        #: the TAP page asks for no password: its failures count on windowed counters of their
        #: own, never the MFA codes' durable one (SECURITY.md case 57)
        self.throttle = WindowedThrottle(
            ctx.store,
            "tap",
            WindowLimits(
                per_account_ip=config.failures_per_window,
                per_account=config.account_failures_per_window,
                per_ip=config.ip_failures_per_window,
                window=config.window,
            ),
        )
        #: a throttled caller's repeats are not audited (decision 188)
        self.refusals = RefusalAudit(ctx.store, "tap")

    # -- admin side ---------------------------------------------------------------------------

    def issue(
        self,
        user_id: str,
        *,
        minutes: int | None = None,
        one_time: bool | None = None,
        actor: str,
        ip: str | None = None,
    ) -> IssuedTap:
        """A new pass for ``user_id`` (replacing any earlier one). Raises ``InvalidInput``."""
        minutes = self.config.default_lifetime_minutes if minutes is None else minutes
        one_time = self.config.one_time_default if one_time is None else one_time
        if not TAP_MIN_MINUTES <= minutes <= self.config.max_lifetime_minutes:
            raise InvalidInput(
                "lifetime_minutes",
                f"expected {TAP_MIN_MINUTES} to {self.config.max_lifetime_minutes} minutes",
            )
        ctx = self.ctx
        now = ctx.clock.now()
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        tap = IssuedTap(
            id=random_id(),
            user_id=user_id,
            code=format_code(code),
            created_at=now,
            expires_at=now + minutes * 60,
            one_time=one_time,
        )
        record = {
            "id": tap.id,
            "hash": self.hasher.hash(code),
            "created_at": tap.created_at,
            "expires_at": tap.expires_at,
            "one_time": one_time,
            "issued_by": actor,
        }
        replaced = ctx.store.take_challenge(_key(user_id))
        ctx.store.put_challenge(_key(user_id), record, ttl=minutes * 60 + _GRACE)
        ctx.audit(
            "tap.issued",
            user_id,
            "success",
            ip=ip,
            tap_id=tap.id,
            one_time=one_time,
            lifetime_minutes=minutes,
            actor=actor,
            replaced=replaced["id"] if replaced else None,
        )
        return tap

    def revoke(self, user_id: str, *, actor: str, ip: str | None = None) -> bool:
        """Delete the user's pass; False when there was none."""
        record = self.ctx.store.take_challenge(_key(user_id))
        if record is None:
            return False
        self._mark_ended(user_id, record, "revoked")
        self.ctx.audit(
            "tap.revoked", user_id, "success", ip=ip, tap_id=record.get("id"), actor=actor
        )
        return True

    def status(self, user_id: str) -> TapStatus | None:
        record = self.ctx.store.peek_challenge(_key(user_id))
        if record is None:
            return None
        return TapStatus(
            id=str(record.get("id")),
            created_at=float(record.get("created_at", 0)),
            expires_at=float(record.get("expires_at", 0)),
            one_time=bool(record.get("one_time")),
            issued_by=str(record.get("issued_by", "")),
            usable=self.ctx.clock.now() < float(record.get("expires_at", 0)),
        )

    # -- sign-in side -------------------------------------------------------------------------

    def verify(self, user_id: str, code: str, *, ip: str | None) -> str:
        """Check a pass typed at sign-in; returns the pass id, or raises.

        Raises ``RateLimited`` (counted before the check, as for every code) or
        ``VerificationFailed(reason)`` with reason ``none``, ``revoked``, ``used``,
        ``expired`` or ``wrong_code``. Every outcome is audited (never the code).

        Counted on the pass's own windowed counters (:attr:`throttle`). A success also clears
        the MFA codes' counters: the admin's pass is the owner's way back in.
        """
        self._attempt(user_id, ip)
        return self._verify_counted(user_id, code, ip=ip)

    def _attempt(self, user_id: str, ip: str | None) -> None:
        try:
            self.throttle.attempt(user_id, ip)
        except RateLimited as exc:
            extra = self.refusals.detail(ip or "-")  # once per address and window (decision 188)
            if extra is not None:
                self.ctx.audit(
                    "tap.failed", user_id, "blocked", ip=ip, reason="throttled", scope=exc.scope,
                    **extra,
                )  # fmt: skip
            raise

    def _verify_counted(self, user_id: str, code: str, *, ip: str | None) -> str:
        ctx = self.ctx
        try:
            tap_id = self._check(user_id, normalize_code(code)[:64])
        except VerificationFailed as exc:
            self.throttle.failed(user_id, ip)
            ctx.audit("tap.failed", user_id, "failure", ip=ip, reason=exc.reason)
            raise
        self.throttle.succeeded(user_id, ip)
        ctx.throttle.succeeded(user_id)
        ctx.audit("tap.used", user_id, "success", ip=ip, tap_id=tap_id)
        return tap_id

    def _check(self, user_id: str, code: str) -> str:
        store = self.ctx.store
        record = store.peek_challenge(_key(user_id))
        if record is None:
            self.hasher.verify("", code)  # the same cost as a real check: no timing tell
            ended = store.peek_challenge(_ended_key(user_id)) or {}
            reason = ended.get("reason") if ended.get("reason") in ("used", "revoked") else "none"
            raise VerificationFailed(str(reason))
        if not self.hasher.verify(str(record.get("hash", "")), code):
            raise VerificationFailed("wrong_code")
        if self.ctx.clock.now() >= float(record.get("expires_at", 0)):
            raise VerificationFailed("expired")
        if record.get("one_time"):
            self._consume(user_id, record)
        return str(record["id"])

    def _consume(self, user_id: str, record: Mapping[str, Any]) -> None:
        """Atomically take a one-time pass; a parallel use that took it first wins."""
        store = self.ctx.store
        taken = store.take_challenge(_key(user_id))
        if taken is None:
            raise VerificationFailed("used")
        if taken.get("id") != record.get("id"):
            # An admin replaced the pass between our read and our take: put the new one back.
            ttl = float(taken.get("expires_at", 0)) - self.ctx.clock.now() + _GRACE
            store.put_challenge(_key(user_id), taken, ttl=max(ttl, 1.0))
            raise VerificationFailed("none")
        self._mark_ended(user_id, record, "used")

    def _mark_ended(self, user_id: str, record: Mapping[str, Any], reason: str) -> None:
        marker = {"id": record.get("id"), "reason": reason, "at": self.ctx.clock.now()}
        self.ctx.store.put_challenge(_ended_key(user_id), marker, ttl=_ENDED_TTL)

    def sign_in(
        self, user: DirectoryUser | None, user_id: str, code: str, *, ip: str | None
    ) -> str | None:
        """The sign-in check the middleware makes: the pass id, or None (every failure audited).

        An unknown or disabled account fails like a wrong pass: counted on the same limits under
        the name typed (so a throttled address is refused alike for every name, telling nothing),
        the same cost, no use of the pass.
        """
        try:
            self._attempt(user_id, ip)
        except RateLimited:
            return None
        if user is None or not user.enabled:
            self.hasher.verify("", normalize_code(code)[:64])
            self.throttle.failed(user_id, ip)
            reason = "unknown_user" if user is None else "user_disabled"
            self.ctx.audit("tap.failed", user_id, "failure", ip=ip, reason=reason)
            return None
        try:
            return self._verify_counted(user_id, code, ip=ip)
        except VerificationFailed:
            return None

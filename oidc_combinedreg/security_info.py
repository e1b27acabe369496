"""The security-info service: methods, verification and audit over the store. No web imports.

The web layer calls this; it calls the pure method modules, the store, the throttle and the crypto box.
Every change writes an audit event in the same store transaction as the change itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .clock import Clock
from .config.model import Config
from .crypto import SecretBox
from .exceptions import ChallengeExpired, CodeReused, LimitReached, VerificationFailed
from .methods.kinds import METHOD_RULES, MethodKind
from .methods.totp import TotpMethod, TotpSetup
from .store.base import AuditEvent, MethodRecord, Store, UserState
from .throttle import Throttle

__all__ = ["SecurityInfo"]


def _new_id() -> str:
    return secrets.token_urlsafe(12)


class SecurityInfo:
    """What a user has registered, and the operations on it."""

    def __init__(self, *, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.box = SecretBox(config.secrets.encryption_keys)
        self.throttle = Throttle(store, config.throttle)
        self.totp = TotpMethod(
            issuer=config.totp.issuer,
            drift_steps=config.totp.drift_steps,
            pending_ttl=config.totp.pending_ttl,
        )

    # -- reading ------------------------------------------------------------------------------

    def methods(self, user_id: str) -> list[MethodRecord]:
        return self.store.list_methods(user_id)

    def mfa_methods(self, user_id: str) -> list[MethodRecord]:
        return [m for m in self.store.list_methods(user_id) if METHOD_RULES[m.kind].mfa]

    def state(self, user_id: str) -> UserState:
        return self.store.get_user_state(user_id)

    def default_method(self, user_id: str, methods: list[MethodRecord]) -> MethodRecord | None:
        """The user's default MFA method, or the most secure one when none is set."""
        mfa = [m for m in methods if METHOD_RULES[m.kind].mfa]
        default_id = self.store.get_user_state(user_id).default_method_id
        for m in mfa:
            if m.id == default_id:
                return m
        return min(mfa, key=lambda m: METHOD_RULES[m.kind].rank, default=None)

    # -- audit --------------------------------------------------------------------------------

    def event(
        self,
        event: str,
        user_id: str | None,
        outcome: str,
        *,
        ip: str | None = None,
        correlation_id: str | None = None,
        **detail: Any,
    ) -> AuditEvent:
        return AuditEvent(
            at=self.clock.now(),
            event=event,
            user_id=user_id,
            outcome=outcome,
            ip=ip,
            correlation_id=correlation_id,
            detail=detail,
        )

    def audit(
        self, event: str, user_id: str | None, outcome: str, *, ip: str | None = None, **detail: Any
    ) -> None:
        self.store.append_audit(self.event(event, user_id, outcome, ip=ip, **detail))

    # -- TOTP ---------------------------------------------------------------------------------

    def totp_begin(
        self, user_id: str, account_name: str, pending: Mapping[str, Any] | None
    ) -> tuple[TotpSetup, dict[str, Any]]:
        """A pending authenticator-app setup; an unexpired pending one is shown again, unchanged."""
        now = self.clock.now()
        if pending and pending.get("user_id") == user_id and float(pending["expires"]) > now:
            state = dict(pending)
            return self.totp.setup_from_state(state), state
        self._check_limit(user_id, MethodKind.TOTP)
        setup, state = self.totp.register_begin(account_name=account_name, now=now)
        state["user_id"] = user_id
        return setup, state

    def totp_complete(
        self,
        user_id: str,
        state: Mapping[str, Any] | None,
        code: object,
        *,
        label: str,
        ip: str | None,
    ) -> MethodRecord:
        """Bind the pending secret after a correct code; nothing is stored before that."""
        if not state or state.get("user_id") != user_id:
            raise ChallengeExpired("no authenticator app setup in progress")
        self.throttle.attempt(user_id, ip)
        try:
            secret, step = self.totp.register_complete(dict(state), code, now=self.clock.now())
        except VerificationFailed:
            self.throttle.failed(user_id, ip)
            self.audit("method.add_failed", user_id, "failure", ip=ip, kind="totp", reason="code")
            raise
        self.throttle.succeeded(user_id)
        method_id = _new_id()
        now = self.clock.now()
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=MethodKind.TOTP,
            label=label,
            created_at=now,
            data={"issuer": self.totp.issuer},
            secret=self.box.encrypt(secret.encode(), context=_context(user_id, method_id)),
            counter=step,
            last_used_at=now,
        )
        self.store.add_method(
            record,
            limit=METHOD_RULES[MethodKind.TOTP].per_user,
            events=[
                self.event(
                    "method.added", user_id, "success", ip=ip, kind="totp", method_id=method_id
                )
            ],
        )
        return record

    def verify_code(
        self, user_id: str, method_id: str, code: object, *, ip: str | None
    ) -> MethodRecord:
        """MFA with a TOTP method: throttled, replay-proof (the store's compare-and-set)."""
        record = self.store.get_method(user_id, method_id)
        if record is None or record.kind is not MethodKind.TOTP:
            raise ChallengeExpired("no such method")
        self.throttle.attempt(user_id, ip)
        secret = self.box.decrypt(record.secret, context=_context(user_id, record.id)).decode()
        now = self.clock.now()
        try:
            step = self.totp.authenticate_complete(secret, code, last_step=record.counter, now=now)
            if not self.store.advance_counter(user_id, record.id, step, now):
                # Another request used this step (or a later one) between our read and our write.
                raise CodeReused("this code was already used; wait for the next one")
        except (VerificationFailed, CodeReused) as exc:
            self.throttle.failed(user_id, ip)
            reason = "replay" if isinstance(exc, CodeReused) else "code"
            self.audit("mfa.failed", user_id, "failure", ip=ip, kind="totp", reason=reason)
            raise
        self.throttle.succeeded(user_id)
        self.audit("mfa.succeeded", user_id, "success", ip=ip, kind="totp", method_id=record.id)
        return replace(record, counter=step, last_used_at=now)

    # -- changes ------------------------------------------------------------------------------

    def delete_method(self, user_id: str, method_id: str, *, ip: str | None) -> bool:
        record = self.store.get_method(user_id, method_id)
        if record is None or not METHOD_RULES[record.kind].deletable:
            return False
        return self.store.delete_method(
            user_id,
            method_id,
            events=[
                self.event(
                    "method.deleted",
                    user_id,
                    "success",
                    ip=ip,
                    kind=record.kind.value,
                    method_id=method_id,
                )
            ],
        )

    def set_default(self, user_id: str, method_id: str, *, ip: str | None) -> bool:
        record = self.store.get_method(user_id, method_id)
        if record is None or not METHOD_RULES[record.kind].mfa:
            return False
        state = self.store.get_user_state(user_id)
        self.store.put_user_state(
            replace(state, default_method_id=method_id),
            events=[
                self.event("method.default_changed", user_id, "success", ip=ip, method_id=method_id)
            ],
        )
        return True

    def record_confirmed(self, user_id: str) -> None:
        state = self.store.get_user_state(user_id)
        self.store.put_user_state(replace(state, confirmed_at=self.clock.now(), reregister=False))

    def _check_limit(self, user_id: str, kind: MethodKind) -> None:
        limit = METHOD_RULES[kind].per_user
        if sum(1 for m in self.store.list_methods(user_id) if m.kind is kind) >= limit:
            raise LimitReached(kind.value, limit)


def _context(user_id: str, method_id: str) -> bytes:
    # Binds a ciphertext to its row: a seed copied into another user's record does not decrypt.
    return f"{user_id}\x00{method_id}".encode()

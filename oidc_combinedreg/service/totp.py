"""Authenticator apps (TOTP): registration and verification over the store."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..exceptions import ChallengeExpired, VerificationFailed
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.totp import TotpMethod, TotpSetup
from ..notify import Change
from ..store.base import MethodRecord
from .base import CodeVerifier, ServiceContext, secret_context

__all__ = ["TotpService"]


class TotpService(CodeVerifier):
    kind = MethodKind.TOTP

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        cfg = ctx.config.totp
        self.method = TotpMethod(
            issuer=cfg.issuer, drift_steps=cfg.drift_steps, pending_ttl=cfg.pending_ttl
        )

    # -- registration -------------------------------------------------------------------------

    def register_begin(
        self, user_id: str, account_name: str, pending: Mapping[str, Any] | None
    ) -> tuple[TotpSetup, dict[str, Any]]:
        """A pending setup; an unexpired pending one is shown again, unchanged (same QR code)."""
        now = self.ctx.clock.now()
        if pending and pending.get("user_id") == user_id and float(pending["expires"]) > now:
            state = dict(pending)
            return self.method.setup_from_state(state), state
        self.ctx.check_room(user_id, self.kind)
        setup, state = self.method.register_begin(account_name=account_name, now=now)
        state["user_id"] = user_id
        return setup, state

    def register_complete(
        self,
        user_id: str,
        state: Mapping[str, Any] | None,
        code: object,
        *,
        label: str,
        ip: str | None,
    ) -> MethodRecord:
        """Bind the pending secret after a correct code; nothing is stored before that."""
        ctx = self.ctx
        if not state or state.get("user_id") != user_id:
            raise ChallengeExpired("no authenticator app setup in progress")
        ctx.throttle.attempt(user_id, ip)
        try:
            secret, step = self.method.register_complete(dict(state), code, now=ctx.clock.now())
        except VerificationFailed:
            ctx.throttle.failed(user_id, ip)
            ctx.audit("method.add_failed", user_id, "failure", ip=ip, kind="totp", reason="code")
            raise
        ctx.throttle.succeeded(user_id)
        method_id = secrets.token_urlsafe(12)
        now = ctx.clock.now()
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=self.kind,
            label=label,
            created_at=now,
            data={"issuer": self.method.issuer},
            secret=ctx.box.encrypt(secret.encode(), context=secret_context(user_id, method_id)),
            counter=step,
            last_used_at=now,
        )
        events, notice = ctx.method_change("method.added", Change.ADDED, record, ip=ip)
        ctx.store.add_method(record, limit=METHOD_RULES[self.kind].per_user, events=events)
        notice.send()
        return record

    # -- verification (MfaVerifier) -----------------------------------------------------------

    def verify_code(
        self, user_id: str, record: MethodRecord, code: object, *, ip: str | None
    ) -> int:
        """Throttled and replay-proof (the store's compare-and-set). Returns the time step."""
        box = self.ctx.box

        def match(now: float) -> int:
            secret = box.decrypt(record.secret, context=secret_context(user_id, record.id))
            return self.method.authenticate_complete(
                secret.decode(), code, last_step=record.counter, now=now
            )

        return self.ctx.check_code(user_id, record, match, ip=ip)

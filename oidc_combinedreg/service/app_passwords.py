"""App passwords: registration (manage mode only) and the host's check for non-browser protocols.

Not an :class:`~oidc_combinedreg.service.base.MfaVerifier`: the MFA page, the wizard and password
reset never list or accept app passwords (SECURITY.md case 37). The host checks one with
:meth:`CombinedRegistration.check_app_password`, which lands in :meth:`AppPasswordService.check`.
The check is open to anyone who knows a user name (a mail client's login), so its failures count on
windowed counters of their own (:class:`~oidc_combinedreg.throttle.WindowedThrottle`, ``[throttle]``
limits): per account from one address, per account from all (ten times that), per address. Nothing
durable: a guesser is refused for a window and cannot lock the owner out of their app passwords or
of browser MFA (SECURITY.md case 57). An app password has 79 random bits: a window bounds guessing.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..conditional_access import ClientAppType, Control, Engine, Outcome, SignInContext, Target
from ..crypto import SecretHasher
from ..directory import DirectoryUser
from ..exceptions import AccessDenied, RateLimited
from ..methods.app_passwords import AppPasswordMethod, AppPasswordSetup, fingerprint
from ..methods.kinds import METHOD_RULES, MethodKind
from ..notify import Change
from ..store.base import MethodRecord
from ..throttle import WindowedThrottle, WindowLimits
from .base import ServiceContext
from .refusal_audit import RefusalAudit

__all__ = ["AppPasswordService"]


class AppPasswordService:
    kind = MethodKind.APP_PASSWORD

    def __init__(self, ctx: ServiceContext, hasher: SecretHasher | None = None) -> None:
        self.ctx = ctx
        #: Argon2id (RFC 9106 low-memory profile); tests swap in ``fast_hasher_for_tests()``
        self.hasher = hasher or SecretHasher()
        self.method = AppPasswordMethod()
        self.limit = METHOD_RULES[self.kind].per_user
        cfg = ctx.config.throttle
        self.throttle = WindowedThrottle(
            ctx.store,
            "app_password",
            WindowLimits(
                per_account_ip=cfg.failures_per_window,
                per_account=cfg.failures_per_window * 10,
                per_ip=cfg.ip_failures_per_window,
                window=cfg.window,
            ),
        )
        #: a throttled caller's repeats are not audited (decision 188)
        self.refusals = RefusalAudit(ctx.store, "app_password")

    def may_register(self, user: DirectoryUser) -> bool:
        return self.method.may_register(user.per_user_mfa)

    def register(
        self, user: DirectoryUser, name: object, *, ip: str | None
    ) -> tuple[AppPasswordSetup, MethodRecord]:
        """A new app password: returns the one-time plain text and the stored record."""
        if not self.may_register(user):
            raise AccessDenied("app passwords need per-user MFA enforced")
        setup = self.method.register_begin(name=name)
        method_id = secrets.token_urlsafe(12)
        record = MethodRecord(
            id=method_id,
            user_id=user.id,
            kind=self.kind,
            label=setup.name,
            created_at=self.ctx.clock.now(),
            data={"fp": fingerprint(setup.password)},
            secret=self.hasher.hash(setup.password).encode(),
        )
        events, notice = self.ctx.method_change("method.added", Change.ADDED, record, ip=ip)
        self.ctx.store.add_method(record, limit=self.limit, events=events)
        notice.send()
        return setup, record

    # -- the host's check ---------------------------------------------------------------------

    def check(
        self,
        user_id: str,
        password: object,
        *,
        ip: str | None,
        ca: Engine | None = None,
        client_id: str = "legacy-client",
    ) -> bool:
        """True iff ``password`` is one of the user's app passwords and nothing forbids its use.

        Never raises for a wrong password, an unknown user or throttling (each is ``False`` and
        audited); a store outage raises :class:`StoreUnavailable` (fail closed).
        """
        # Counted first, under the name typed, for every name: a refused address is refused
        # alike for all of them (no tell), and made-up names cannot burn Argon2 without limit.
        try:
            self.throttle.attempt(user_id, ip)
        except RateLimited:
            extra = self.refusals.detail(ip or "-")  # once per address and window (decision 188)
            return self._fail(user_id, ip, "rate_limited", **extra) if extra is not None else False
        user = self.ctx.directory.get_user(user_id) if self.ctx.directory else None
        if user is None or not user.enabled or not self.may_register(user):
            self.hasher.verify("", str(password))  # same cost as a real check
            self.throttle.failed(user_id, ip)
            return self._fail(user_id, ip, "not_allowed")
        if not self._matches(user_id, password):
            self.throttle.failed(user_id, ip)
            return self._fail(user_id, ip, "password")
        self.throttle.succeeded(user_id, ip)
        if ca is not None and not self._ca_allows(ca, user, ip, client_id):
            return self._fail(user_id, ip, "conditional_access")
        self.ctx.audit("app_password.succeeded", user_id, "success", ip=ip, client_id=client_id)
        return True

    def _matches(self, user_id: str, password: object) -> bool:
        stored = {m.id: m for m in self.ctx.store.list_methods(user_id) if m.kind is self.kind}
        fps = {mid: str(m.data.get("fp", "")) for mid, m in stored.items()}
        value, ids = self.method.candidates(fps, password)
        if value is None or not ids:
            self.hasher.verify("", str(password)[:64])  # same cost as a real check
            return False
        for mid in ids:
            record = stored[mid]
            if self.hasher.verify(record.secret.decode(), value):
                now = self.ctx.clock.now()
                self.ctx.store.advance_counter(user_id, mid, record.counter + 1, now)
                return True
        return False

    def _ca_allows(self, ca: Engine, user: DirectoryUser, ip: str | None, client_id: str) -> bool:
        # An app password stands for password + MFA of a legacy client: it satisfies "require
        # MFA" but neither phishing resistance nor a location or block rule.
        decision = ca.evaluate(
            SignInContext(
                user_id=user.id,
                groups=user.groups,
                target=Target.application(client_id),
                client_ip=ip,
                client_app=ClientAppType.OTHER,
                satisfied=frozenset({Control.MFA}),
            )
        )
        return decision.outcome is Outcome.ALLOW and not decision.missing

    def _fail(self, user_id: str, ip: str | None, reason: str, **extra: Any) -> bool:
        self.ctx.audit("app_password.failed", user_id, "failure", ip=ip, reason=reason, **extra)
        return False

"""The password reset's throttles and budgets: windowed counters, never the sign-in's.

Counted under ``reset:`` keys (hashed account names and addresses): per account from one
client IP, per account from all (ten times that), per client IP, and per account per day; and
at most one "you can't reset it yourself" email an hour. The method services run with a muted
throttle (:class:`CountedByTheFlow`), so reset attempts cannot lock anyone out of signing in
(SECURITY.md cases 49, 57; docs/security.md lists every key).
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import RateLimited
from ..throttle import Attempt, Throttle
from .reset_flow import ResetFlow

if TYPE_CHECKING:
    from ..config.model import Config
    from ..store.base import Store
    from . import SecurityInfo

log = logging.getLogger("oidc_combinedreg.reset")

#: attempts per account per day (on top of the per-window limit): bounds guessing to NIST's scale
DAILY_ATTEMPTS = 50
#: at most one "you can't reset it yourself" email per account per hour
_UNAVAILABLE_MAIL_EVERY = 3600


class CountedByTheFlow(Throttle):
    """The method services' throttle, muted: the reset flow counts attempts itself.

    The reset's counters are windowed and live under ``reset:`` keys; the sign-in's durable
    consecutive-failure counter is never touched, so a stranger guessing reset codes cannot lock
    the owner out of MFA at sign-in (SECURITY.md case 49).
    """

    def check(self, user_id: str, ip: str | None) -> None:
        return None

    def attempt(self, user_id: str, ip: str | None) -> None:
        return None

    def begin(self, user_id: str, ip: str | None) -> Attempt:
        # Counted (by nobody) and clearing nothing: the sign-in's counters neither refuse a
        # reset code nor are cleared by one.
        return Attempt(self, user_id, ip, counted=True, clears=[])

    def failed(self, user_id: str, ip: str | None, *, attempt_counted: bool = True) -> None:
        return None

    def succeeded(self, user_id: str) -> None:
        return None


def _counter_key(scope: str, subject: str) -> str:
    return f"reset:{scope}:{hashlib.sha256(subject.encode()).hexdigest()[:32]}"


def reset_day_key(account: str) -> str:
    """The counter of an account's reset attempts today (decision 13's daily cap)."""
    return _counter_key("day:acct", account.casefold())


def reset_account_keys(account: str) -> list[str]:
    """The account's reset counters, which an admin's unlock clears."""
    subject = account.casefold()
    return [_counter_key(scope, subject) for scope in ("start:acct", "try:acct", "day:acct")]


class ResetThrottles:
    """The counting half of :class:`~oidc_combinedreg.service.reset.ResetService` (mixed in)."""

    info: SecurityInfo
    config: Config
    store: Store

    def _account_limits(
        self, step: str, account: str, ip: str | None
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Per account from this address first, then per account from all (ten times as many):
        a stranger who keeps naming alice is refused alone (SECURITY.md case 57), and since
        :meth:`_count` stops at the first limit, their refused tries do not count for alice."""
        per_window = self.config.throttle.failures_per_window
        name = account.casefold()
        return (
            (f"{step}:acct-ip", f"{ip or '-'}|{name}", per_window),
            (f"{step}:acct", name, per_window * 10),
        )

    def _count(self, *limits: tuple[Any, ...]) -> None:
        """Count one attempt on each ``(scope, subject, limit[, ttl])``; windowed, never durable."""
        window = self.config.throttle.window
        for scope, subject, limit, *ttl in limits:
            seconds = ttl[0] if ttl else window
            if self.store.incr(_counter_key(scope, str(subject)), ttl=seconds) > limit:
                raise RateLimited(retry_after=int(seconds), scope=f"reset-{scope}")

    def _tell_owner_if_blocked(self, flow: ResetFlow) -> None:
        """An existing account that cannot reset itself learns why by email (at most hourly)."""
        if flow.eligible or flow.user_id is None or self.info.delivery.email is None:
            return
        key = f"reset:unavailable:{hashlib.sha256(flow.user_id.encode()).hexdigest()[:32]}"
        if self.store.incr(key, ttl=_UNAVAILABLE_MAIL_EVERY) > 1:
            return
        from ..delivery.base import DeliveryFailed
        from ..delivery.reset_messages import reset_unavailable_email

        org = self.config.general.organization
        lang = self.config.general.default_language
        for to in self.info.notifier.recipients(flow.user_id):
            try:
                self.info.delivery.email.send_email(
                    reset_unavailable_email(to=to, org=org, lang=lang)
                )
            except DeliveryFailed:
                log.warning("reset-unavailable notice not delivered")

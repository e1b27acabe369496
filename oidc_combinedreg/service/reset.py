"""Self-service password reset over the store: the flow, its methods, throttling and audit.

The flow's state lives server side under its own random token (``reset:flow:<sha256>``), apart from
the sign-in session: a reset never yields a session that can see or register security info
(SECURITY.md case 48). Every POST takes the state atomically and stores it again under a **new**
token, so a token is used once, two parallel requests cannot both advance one flow, and the whole
flow expires ``FLOW_TTL`` seconds after it started. The state says which step comes next; the web
layer can only ask for that step (case 47: no skipping, no reordering).

Account enumeration (case 46): naming an account does the same store and directory work whether it
exists or not, and answers the same. An account that does not exist, is disabled, is outside the
SSPR policy or has too few methods gets a *decoy* flow: the same pages, where every check fails.
Its owner (if any) learns why by email, never on the page.

Throttling (case 49) uses the store's windowed counters under ``reset:`` keys, per account from one
client IP, per account (ten times that), per client IP and per account per day; it never touches
the sign-in's consecutive-failure counter, so reset attempts cannot lock anyone out of signing in,
and one address that keeps failing is refused alone (case 57).

The parts: reset_flow.py (the flow's state and token), reset_limits.py (its throttles and
budgets), reset_methods.py (starting and checking each method: codes, questions, app codes),
reset_decoys.py (the decoy flows); this module has the steps.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..directory import DirectoryUser
from ..exceptions import (
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    RateLimited,
    VerificationFailed,
)
from ..methods.kinds import MethodKind
from ..policy.reset import (
    CHOICE_KINDS,
    PASSWORD_RESET_REQUIRED,
    ResetChoice,
    ResetFacts,
    channel_of,
    eligibility,
    next_choices,
    offered_choices,
    passed_from,
    satisfied,
    usable_methods,
)
from ..store.base import MethodRecord
from .base import ServiceContext
from .email import EmailService
from .hardware_oath import HardwareOathService
from .phone import PhoneService
from .push import PushService
from .refusal_audit import RefusalAudit
from .reset_flow import (
    FLOW_TTL,
    ResetFlow,
    ResetStep,
    flow_token_key,
    plausible_token,
)
from .reset_limits import (
    DAILY_ATTEMPTS,
    CountedByTheFlow,
    ResetThrottles,
    reset_account_keys,
    reset_day_key,
)
from .reset_methods import ResetMethods
from .totp import TotpService

if TYPE_CHECKING:
    from . import SecurityInfo

__all__ = [  # the flow's state and the throttles' keys are imported from here (web, admin)
    "FLOW_TTL",
    "ResetFlow",
    "ResetService",
    "ResetStep",
    "reset_account_keys",
    "reset_day_key",
]

log = logging.getLogger("oidc_combinedreg.reset")

#: the longest account name the first step takes
_ACCOUNT_MAX = 256


class ResetService(ResetThrottles, ResetMethods):
    """The password reset flow. ``info`` is the :class:`~oidc_combinedreg.service.SecurityInfo`."""

    def __init__(
        self, info: SecurityInfo, *, on_password_reset: Callable[[str], None] | None = None
    ) -> None:
        self.info = info
        self.config = info.config
        self.store = info.store
        self.clock = info.clock
        self.on_password_reset = on_password_reset
        ctx: ServiceContext = replace(
            info.ctx, throttle=CountedByTheFlow(info.store, info.config.throttle)
        )
        self.ctx = ctx
        self.refusals = RefusalAudit(info.store, "reset")
        self.email = EmailService(ctx, info.delivery)
        self.phones = {
            kind: PhoneService(ctx, info.delivery, kind)
            for kind in (MethodKind.MOBILE_PHONE, MethodKind.ALTERNATE_PHONE)
        }
        self.app_codes: dict[MethodKind, Any] = {
            MethodKind.TOTP: TotpService(ctx),
            MethodKind.PUSH: PushService(ctx),
            MethodKind.HARDWARE_OATH: HardwareOathService(ctx),
        }
        self._pepper = hmac.new(
            self.config.secrets.code_pepper, b"combinedreg reset decoy", hashlib.sha256
        ).digest()
        self._dummy_hash: str | None = None

    # -- the flow's storage -------------------------------------------------------------------

    def fresh(self) -> ResetFlow:
        """A new flow at its first step (not stored yet: :meth:`save` does)."""
        return ResetFlow(
            step=ResetStep.ACCOUNT, csrf=secrets.token_urlsafe(32), created_at=self.clock.now()
        )

    def start(self) -> tuple[str, ResetFlow]:
        flow = self.fresh()
        return self.save(flow), flow

    def load(self, token: str | None) -> ResetFlow | None:
        """Read without using (GET pages)."""
        if not plausible_token(token):
            return None
        data = self.store.peek_challenge(flow_token_key(str(token)))
        return ResetFlow.from_dict(data) if data else None

    def take(self, token: str | None) -> ResetFlow | None:
        """Use the token (atomically): every POST does, then :meth:`save` gives a new one."""
        if not plausible_token(token):
            return None
        data = self.store.take_challenge(flow_token_key(str(token)))
        return ResetFlow.from_dict(data) if data else None

    def save(self, flow: ResetFlow) -> str:
        """Store under a new token; the flow keeps its original expiry."""
        left = flow.created_at + FLOW_TTL - self.clock.now()
        token = secrets.token_urlsafe(32)
        if left > 0:
            self.store.put_challenge(flow_token_key(token), flow.as_dict(), ttl=left)
        return token

    # -- step 1: the account ------------------------------------------------------------------

    def _facts(self, account: str) -> tuple[ResetFacts, DirectoryUser | None]:
        # The same directory and store calls whether the account exists or not (same timing class).
        user = self.info.ctx.directory.get_user(account) if self.info.ctx.directory else None
        methods = self.info.methods(account)
        facts = ResetFacts(
            user_id=account,
            exists=user is not None,
            enabled=user.enabled if user else False,
            groups=user.groups if user else frozenset(),
            methods=methods,
            deliverable=self.deliverable_kinds(),
        )
        return facts, user

    def name_account(self, flow: ResetFlow, account: str, *, ip: str | None) -> ResetFlow:
        """Step 1. Raises ``InvalidInput`` (empty name) or ``RateLimited``; never says more."""
        account = account.strip()
        if not account or len(account) > _ACCOUNT_MAX:
            raise InvalidInput("account", "Enter your user name.")
        self._count(
            ("start:ip", ip or "-", self.config.throttle.ip_failures_per_window),
            *self._account_limits("start", account, ip),
        )
        facts, user = self._facts(account)
        verdict = eligibility(facts, self.config.policies)
        self.info.audit(
            "reset.started",
            user.id if user else None,
            "info" if verdict.eligible else "blocked",
            ip=ip,
            eligible=verdict.eligible,
            reason=verdict.block.value if verdict.block else None,
        )
        return replace(
            flow,
            step=ResetStep.CHOOSE,
            account=account,
            user_id=user.id if user else None,
            eligible=verdict.eligible,
            has_mfa=verdict.has_mfa,
        )

    # -- step 2: methods ----------------------------------------------------------------------

    def deliverable_kinds(self) -> frozenset[MethodKind]:
        return self.info.available_kinds()

    def _deliverable_choices(self) -> frozenset[ResetChoice]:
        d = self.info.delivery
        out = {ResetChoice.APP_CODE, ResetChoice.QUESTIONS}
        if d.text is not None:
            out.add(ResetChoice.MOBILE_TEXT)
        if d.voice is not None:
            out |= {ResetChoice.MOBILE_CALL, ResetChoice.ALTERNATE_CALL, ResetChoice.OFFICE_CALL}
        if d.email is not None:
            out.add(ResetChoice.EMAIL)
        return frozenset(out)

    def choices(self, flow: ResetFlow) -> tuple[ResetChoice, ...]:
        """What the chooser lists now: the same first list for everyone."""
        offered = offered_choices(self.config.policies, self._deliverable_choices())
        left = next_choices(
            offered,
            flow.passed_choices,
            flow.passed,
            required=self.config.policies.sspr.methods_required,
            has_mfa=flow.has_mfa,
            custom_questions=self.config.questions.allow_custom,
        )
        if not flow.passed:
            return left
        # Past the first method the user is proven: list only what can still work for them.
        return tuple(c for c in left if self._candidates(flow, c))

    def _candidates(self, flow: ResetFlow, choice: ResetChoice) -> list[MethodRecord]:
        if not flow.eligible or flow.user_id is None:
            return []
        facts, _ = self._facts(flow.user_id)
        used = {p.channel for p in flow.passed}
        return [
            m
            for m in usable_methods(facts, self.config.policies)
            if m.kind in CHOICE_KINDS[choice] and channel_of(m) not in used
        ]

    def choose(
        self, flow: ResetFlow, raw_choice: str, *, ip: str | None, lang: str | None
    ) -> ResetFlow:
        """Start a method: send a code, or pick the questions. Decoys send nothing."""
        try:
            choice = ResetChoice(raw_choice)
        except ValueError:
            raise InvalidInput("choice", "Choose a method.") from None
        if choice not in self.choices(flow):
            raise InvalidInput("choice", "Choose a method.")
        candidates = self._candidates(flow, choice)
        method: dict[str, Any]
        if not candidates:
            self._tell_owner_if_blocked(flow)
            method = {"decoy": True}
            if choice is ResetChoice.QUESTIONS:
                method["questions"] = self._decoy_questions(flow.account)
        else:
            method = self._start_method(flow, choice, candidates[0], ip=ip, lang=lang)
        return replace(flow, step=ResetStep.VERIFY, choice=choice, method=method)

    def resend(self, flow: ResetFlow, *, ip: str | None, lang: str | None) -> ResetFlow:
        """Send the code again (after the cool-down); a decoy pretends to."""
        if flow.choice is None or flow.method.get("decoy") or "challenge" not in flow.method:
            return flow
        record = self._record(flow, str(flow.method.get("method_id")))
        if record is None:
            raise ChallengeExpired("the method is gone")
        method = self._start_method(
            flow, flow.choice, record, ip=ip, lang=lang, previous=flow.method
        )
        return replace(flow, method=method)

    def questions(self, flow: ResetFlow) -> list[str]:
        """The questions the verify page shows (the same ones until answered or expired)."""
        if flow.choice is not ResetChoice.QUESTIONS:
            return []
        if flow.method.get("decoy"):
            return [str(q) for q in flow.method.get("questions", [])]
        record = self._record(flow, str(flow.method.get("method_id")))
        if record is None or flow.user_id is None:
            return []
        asked, _ = self._questions().ask(flow.user_id, record, pending=flow.method)
        return asked

    def verify(self, flow: ResetFlow, fields: Mapping[str, Any], *, ip: str | None) -> ResetFlow:
        """Check the current method; a pass moves to the next method or to the new password.

        Raises ``VerificationFailed``/``ChallengeExpired``/``CodeReused``/``InvalidInput``/
        ``RateLimited`` (each audited as ``reset.failed`` with its reason).
        """
        assert flow.choice is not None
        subject = flow.user_id
        try:
            self._count(
                ("try:ip", ip or "-", self.config.throttle.ip_failures_per_window),
                *self._account_limits("try", flow.account, ip),
                ("day:acct", flow.account.casefold(), DAILY_ATTEMPTS, 86400),
            )
            record = self._check(flow, fields, ip=ip)
            self._passed(flow, record, ip=ip)
        except (VerificationFailed, ChallengeExpired, CodeReused, InvalidInput, RateLimited) as exc:
            # A refused try: once per address and window; the repeats only counted (decision 188)
            extra = self.refusals.detail(ip or "-") if isinstance(exc, RateLimited) else {}
            if extra is not None:
                self.info.audit(
                    "reset.failed",
                    subject,
                    "failure",
                    ip=ip,
                    reason=_reason(exc, flow),
                    choice=flow.choice.value,
                    **extra,
                )
            raise
        passed = (*flow.passed, passed_from(record))
        sspr = self.config.policies.sspr
        done = satisfied(
            passed,
            required=sspr.methods_required,
            has_mfa=flow.has_mfa,
            allow_questions_alone=sspr.allow_questions_alone,
        )
        return replace(
            flow,
            step=ResetStep.PASSWORD if done else ResetStep.CHOOSE,
            choice=None,
            method={},
            passed=passed,
            passed_choices=(*flow.passed_choices, flow.choice),
        )

    # -- step 3: the new password -------------------------------------------------------------

    def set_password(
        self, flow: ResetFlow, new: str, confirm: str, *, ip: str | None
    ) -> DirectoryUser | None:
        """Set it through the Directory (``PasswordRejected`` carries its reasons), then revoke
        every session, clear the "reset required" flag, notify and call the host's hook."""
        assert flow.step is ResetStep.PASSWORD and flow.user_id is not None
        uid = flow.user_id
        if not new:
            raise InvalidInput("password", "Enter a new password.")
        if not hmac.compare_digest(new.encode(), confirm.encode()):
            raise InvalidInput("confirm", "The passwords don't match.")
        directory = self.info.ctx.directory
        assert directory is not None
        directory.set_password(uid, new)
        revoked = self.store.delete_user_sessions(uid)
        state = self.store.get_user_state(uid)
        extra = {k: v for k, v in state.extra.items() if k != PASSWORD_RESET_REQUIRED}
        notice = self.info.notifier.prepare_password_reset(uid, ip=ip)
        self.store.put_user_state(
            replace(state, extra=extra),
            events=[
                self.info.event(
                    "reset.completed",
                    uid,
                    "success",
                    ip=ip,
                    sessions_revoked=revoked,
                    methods=[p.kind.value for p in flow.passed],
                ),
                *notice.events,
            ],
        )
        notice.send()
        if self.on_password_reset is not None:
            try:
                self.on_password_reset(uid)
            except Exception:  # noqa: BLE001 - the password is set; the host's hook is best effort
                log.exception("the host's on_password_reset hook failed")
        return directory.get_user(uid)

    def password_failed(self, flow: ResetFlow, reason: str, *, ip: str | None) -> None:
        self.info.audit("reset.failed", flow.user_id, "failure", ip=ip, reason=reason)


def _reason(exc: Exception, flow: ResetFlow) -> str:
    if isinstance(exc, RateLimited):
        return "throttled"
    if isinstance(exc, ChallengeExpired):
        return "expired"
    if isinstance(exc, CodeReused):
        return "reused"
    if isinstance(exc, InvalidInput):
        return "invalid"
    if flow.method.get("decoy") or not flow.eligible:
        return "not_eligible" if flow.user_id else "unknown_account"
    return "wrong_answers" if flow.choice is ResetChoice.QUESTIONS else "wrong_code"

"""What a sign-in still needs after the password: pure decisions, no I/O.

The middleware gathers the facts (directory, store, session, Conditional Access) into
:class:`SignInFacts`; :func:`next_step` answers in the order of DESIGN.md's pipeline:
Conditional Access block -> MFA -> registration interrupt -> registration campaign -> done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..directory import PerUserMfa
from ..methods.kinds import METHOD_RULES, MethodKind, channel_family
from ..store.base import MethodRecord, UserState
from .acr import AcrDemand, AcrLevel
from .campaign import campaign_ask
from .config import PolicyConfig
from .reset import PASSWORD_RESET_REQUIRED

__all__ = [
    "RegistrationNeed",
    "SignInFacts",
    "Step",
    "StepKind",
    "next_step",
    "registration_needs",
    "skip_refusal",
    "skips_left",
]


class StepKind(StrEnum):
    BLOCKED = "blocked"
    MFA = "mfa"
    REGISTER = "register"
    #: the registration campaign asks to add the authenticator app (policy/campaign.py); reasons
    #: ``campaign_nudge`` (may be snoozed) or ``campaign_required``
    CAMPAIGN = "campaign"
    DONE = "done"


class RegistrationNeed(StrEnum):
    """Why the registration interrupt runs."""

    MFA_REGISTRATION_ENFORCED = "mfa_registration_enforced"
    PER_USER_MFA_ENFORCED = "per_user_mfa_enforced"
    CONDITIONAL_ACCESS_MFA = "conditional_access_mfa"
    SSPR_REGISTRATION = "sspr_registration"
    SSPR_RECONFIRM = "sspr_reconfirm"
    ADMIN_REREGISTER = "admin_reregister"


@dataclass(frozen=True, kw_only=True, slots=True)
class SignInFacts:
    user_id: str
    groups: frozenset[str]
    per_user_mfa: PerUserMfa
    methods: Sequence[MethodRecord]
    state: UserState
    now: float
    #: MFA done in this sign-in
    mfa_done: bool
    #: the MFA done was with a phishing-resistant method (WebAuthn)
    phr_done: bool = False
    #: Conditional Access blocks this sign-in
    ca_blocked: bool = False
    #: Conditional Access grants access only with MFA
    ca_requires_mfa: bool = False
    #: what the relying party's acr request demands (policy/acr.py)
    acr: AcrDemand = AcrDemand()
    #: the request's max_age has passed since the last factor: a fresh factor is needed
    reauthenticate: bool = False
    #: the wizard already ran (and was completed or postponed) in this sign-in
    registration_handled: bool = False
    #: the kind the registration campaign would ask this user for here (None: none offered)
    campaign_kind: MethodKind | None = None
    #: the campaign was answered (snoozed) in this sign-in
    campaign_handled: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    kind: StepKind
    reasons: tuple[str, ...] = ()


def _has_mfa_method(methods: Sequence[MethodRecord]) -> bool:
    return any(METHOD_RULES[m.kind].mfa for m in methods)


def _sspr_method_count(methods: Sequence[MethodRecord], allowed: frozenset[MethodKind]) -> int:
    """Distinct channels (not kinds) among the methods password reset accepts."""
    return len(
        {channel_family(m.kind) for m in methods if m.kind in allowed and METHOD_RULES[m.kind].sspr}
    )


def mfa_required(facts: SignInFacts, policies: PolicyConfig) -> bool:
    """Does this sign-in need a second factor (if the user has one)?"""
    enforced_registration = policies.mfa_registration.enforced and (
        policies.mfa_registration.audience.contains(facts.user_id, facts.groups)
    )
    return (
        enforced_registration
        or facts.per_user_mfa in (PerUserMfa.ENABLED, PerUserMfa.ENFORCED)
        or facts.ca_requires_mfa
        or facts.acr.level >= AcrLevel.MFA
    )


def registration_needs(facts: SignInFacts, policies: PolicyConfig) -> tuple[RegistrationNeed, ...]:
    """Every reason the registration interrupt should run now (empty: it should not).

    A postponement ("skip") holds back the policy-driven reasons (MFA registration enforced, SSPR
    registration, re-confirm), never per-user MFA, Conditional Access or an admin's request.
    """
    needs: list[RegistrationNeed] = []
    has_mfa = _has_mfa_method(facts.methods)
    mfa_policy = policies.mfa_registration
    snoozed = facts.state.snoozed_until is not None and facts.state.snoozed_until > facts.now
    if not has_mfa:
        if (
            mfa_policy.enforced
            and mfa_policy.audience.contains(facts.user_id, facts.groups)
            and not snoozed
        ):
            needs.append(RegistrationNeed.MFA_REGISTRATION_ENFORCED)
        if facts.per_user_mfa is PerUserMfa.ENFORCED:
            needs.append(RegistrationNeed.PER_USER_MFA_ENFORCED)
        if facts.ca_requires_mfa or facts.acr.register:
            needs.append(RegistrationNeed.CONDITIONAL_ACCESS_MFA)
    sspr = policies.sspr
    if sspr.applies(facts.groups) and not snoozed:
        count = _sspr_method_count(facts.methods, sspr.methods)
        # Questions alone never carry a reset (SECURITY.md case 36): the reset would refuse them.
        questions_only = not sspr.allow_questions_alone and {
            m.kind for m in facts.methods if m.kind in sspr.methods
        } == {MethodKind.SECURITY_QUESTIONS}
        if sspr.require_registration and (count < sspr.methods_required or questions_only):
            needs.append(RegistrationNeed.SSPR_REGISTRATION)
        elif count and sspr.reconfirm_days:
            # Never confirmed: the newest registration is when the user last looked at it. Only
            # what the user registered counts: the directory's office phone is a record dated 0
            # that the user can neither change nor confirm (issue 23.5, decision 86).
            registered = [m.created_at for m in facts.methods if m.kind != MethodKind.OFFICE_PHONE]
            baseline = facts.state.confirmed_at
            if baseline is None and registered:
                baseline = max(registered)
            if baseline is not None and facts.now - baseline >= sspr.reconfirm_days * 86400:
                needs.append(RegistrationNeed.SSPR_RECONFIRM)
    if facts.state.reregister:
        needs.append(RegistrationNeed.ADMIN_REREGISTER)
    return tuple(needs)


_SKIPPABLE = frozenset(
    {
        RegistrationNeed.MFA_REGISTRATION_ENFORCED,
        RegistrationNeed.SSPR_REGISTRATION,
        RegistrationNeed.SSPR_RECONFIRM,
    }
)


def skips_left(
    needs: Sequence[RegistrationNeed], state: UserState, policies: PolicyConfig, now: float
) -> int:
    """How many more times the user may postpone this registration (0: not now)."""
    if not needs or not set(needs) <= _SKIPPABLE:
        return 0
    policy = policies.mfa_registration
    if policy.deadline is not None:
        today = dt.datetime.fromtimestamp(now, tz=dt.UTC).date()
        if today > policy.deadline:
            return 0
    return max(0, policy.skips_allowed - state.skips_used)


def skip_refusal(
    needs: Sequence[RegistrationNeed], state: UserState, policies: PolicyConfig, now: float
) -> str | None:
    """Why a registration that postponing applies to cannot be postponed now, for the page to say:
    ``"deadline_passed"`` or ``"none_left"``; None when a skip is left, or when postponing never
    applied (no skips allowed, or a need such as Conditional Access that is never skippable)."""
    policy = policies.mfa_registration
    if not needs or not set(needs) <= _SKIPPABLE or policy.skips_allowed == 0:
        return None
    if policy.deadline is not None:
        today = dt.datetime.fromtimestamp(now, tz=dt.UTC).date()
        if today > policy.deadline:
            return "deadline_passed"
    if state.skips_used >= policy.skips_allowed:
        return "none_left"
    return None


def next_step(facts: SignInFacts, policies: PolicyConfig) -> Step:
    """The next thing this sign-in must do."""
    if facts.ca_blocked:
        return Step(kind=StepKind.BLOCKED, reasons=("conditional_access",))
    if facts.state.extra.get(PASSWORD_RESET_REQUIRED):
        # "This wasn't me" flagged the account: the password may be known to someone else.
        return Step(kind=StepKind.BLOCKED, reasons=(PASSWORD_RESET_REQUIRED,))
    if facts.acr.unmet:
        # An essential acr (OIDC Core 5.5.1.1) this user cannot reach: a failed authentication.
        return Step(kind=StepKind.BLOCKED, reasons=("acr_unmet",))
    if (
        facts.acr.level is AcrLevel.PHISHING_RESISTANT
        and not facts.phr_done
        and any(METHOD_RULES[m.kind].phishing_resistant for m in facts.methods)
    ):
        return Step(kind=StepKind.MFA, reasons=("phishing_resistant",))
    has_mfa = _has_mfa_method(facts.methods)
    if has_mfa and not facts.mfa_done and mfa_required(facts, policies):
        return Step(kind=StepKind.MFA, reasons=("mfa_required",))
    if facts.reauthenticate and has_mfa:
        # max_age passed: a fresh second factor re-authenticates the user (auth_time moves to
        # it); without a method, the host asks for the password again (docs/oidc.md).
        return Step(kind=StepKind.MFA, reasons=("max_age",))
    if not facts.registration_handled:
        needs = registration_needs(facts, policies)
        if needs:
            return Step(kind=StepKind.REGISTER, reasons=tuple(n.value for n in needs))
    if (facts.ca_requires_mfa or facts.acr.level >= AcrLevel.MFA) and not facts.mfa_done:
        # Required MFA that the user cannot give (no method, and registration was not possible).
        return Step(kind=StepKind.BLOCKED, reasons=("mfa_required_no_method",))
    if not facts.campaign_handled:
        ask = campaign_ask(
            policies.campaign,
            user_id=facts.user_id,
            groups=facts.groups,
            methods=facts.methods,
            extra=facts.state.extra,
            kind=facts.campaign_kind,
            now=facts.now,
        )
        if ask is not None:
            reason = "campaign_required" if ask.required else "campaign_nudge"
            return Step(kind=StepKind.CAMPAIGN, reasons=(reason,))
    return Step(kind=StepKind.DONE)

"""The registration planner: what methods a user still has to register, and in which order.

Pure core: given the policies, the user's groups, the methods they have and the method kinds the
deployment can register, it returns the plan and the alternatives. It is the single source of "what
does this user still need".

Rules (issue 5, DESIGN.md):

* MFA is satisfied by one MFA-capable method; SSPR by ``methods_required`` *distinct* method kinds
  among those its policy allows.
* When any registration runs for a user who is enabled for SSPR, the plan covers both features at
  once, with the fewest methods: an MFA method that password reset also accepts counts for both.
* Most secure first (the ranking in ``methods/kinds.py``), after the kinds an admin lists in
  ``policies.wizard_preference``; security questions are never planned as
  the only method a reset would rest on unless ``allow_questions_alone``; app passwords are never
  planned (they are for legacy clients, added in manage mode by users with per-user MFA enforced).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..methods.kinds import METHOD_RULES, MethodKind, channel_family
from ..store.base import MethodRecord
from .config import PolicyConfig
from .signin import RegistrationNeed

__all__ = ["Plan", "PlannedStep", "plan_registration", "sspr_kinds"]

_MFA_NEEDS = frozenset(
    {
        RegistrationNeed.MFA_REGISTRATION_ENFORCED,
        RegistrationNeed.PER_USER_MFA_ENFORCED,
        RegistrationNeed.CONDITIONAL_ACCESS_MFA,
        RegistrationNeed.ADMIN_REREGISTER,
    }
)
_NEVER_PLANNED = frozenset({MethodKind.APP_PASSWORD})


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannedStep:
    kind: MethodKind
    #: which feature this step is for: "mfa", "sspr" or "both" (legacy mode shows them apart)
    purpose: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    #: methods to register, most secure first
    steps: tuple[PlannedStep, ...]
    #: every other kind the user may register instead ("I want to set up a different method")
    alternatives: tuple[MethodKind, ...]
    #: nothing to register, but the user must re-confirm their methods
    reconfirm_only: bool = False
    #: the policies cannot be met with the methods this user is allowed (an admin must act)
    unsatisfiable: bool = False
    #: what the policies would need that no allowed method gives, for the admin-facing message
    missing: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[MethodKind, ...]:
        return tuple(s.kind for s in self.steps)


def sspr_kinds(methods: Sequence[MethodRecord], policies: PolicyConfig) -> frozenset[MethodKind]:
    """The distinct kinds among ``methods`` that count for password reset."""
    allowed = policies.sspr.methods
    return frozenset(m.kind for m in methods if m.kind in allowed and METHOD_RULES[m.kind].sspr)


def _questions_alone(kinds: Collection[MethodKind]) -> bool:
    return set(kinds) == {MethodKind.SECURITY_QUESTIONS}


def plan_registration(
    *,
    needs: Sequence[RegistrationNeed],
    user_id: str,
    groups: frozenset[str],
    methods: Sequence[MethodRecord],
    policies: PolicyConfig,
    registrable: Collection[MethodKind],
) -> Plan:
    """The fewest methods that make the user compliant with the MFA and SSPR policies at once."""
    preference = policies.wizard_preference

    def order(kind: MethodKind) -> tuple[int, int]:
        first = preference.index(kind) if kind in preference else len(preference)
        return first, METHOD_RULES[kind].rank

    allowed = sorted(
        (
            k
            for k in registrable
            if k not in _NEVER_PLANNED
            and METHOD_RULES[k].user_registers
            and policies.method_allowed(k, user_id, groups)
        ),
        key=order,
    )
    have = {m.kind for m in methods}
    sspr = policies.sspr
    need_set = set(needs)
    need_mfa = bool(need_set & _MFA_NEEDS) and not any(METHOD_RULES[k].mfa for k in have)
    registering = need_mfa or RegistrationNeed.SSPR_REGISTRATION in need_set
    have_sspr = set(sspr_kinds(methods, policies))
    # Distinct channels count, not kinds: a push app and a TOTP app are one phone app.
    have_channels = {channel_family(k) for k in have_sspr}
    sspr_short = 0
    if registering and sspr.applies(groups):
        sspr_short = max(0, sspr.methods_required - len(have_channels))
        if not sspr.allow_questions_alone and _questions_alone(have_sspr):
            sspr_short = max(sspr_short, 1)  # questions alone never carry a reset
    steps: list[PlannedStep] = []
    missing: list[str] = []
    if need_mfa:
        mfa_kinds = [k for k in allowed if METHOD_RULES[k].mfa]
        # A security key needs hardware the user may not have at hand: offered as an
        # alternative, planned only when nothing else is allowed or an admin prefers it.
        if MethodKind.WEBAUTHN not in preference:
            mfa_kinds = [k for k in mfa_kinds if k is not MethodKind.WEBAUTHN] or mfa_kinds
        both = [k for k in mfa_kinds if sspr_short and k in sspr.methods]
        pick = (both or mfa_kinds)[:1]
        if not pick:
            missing.append("mfa")
        for kind in pick:
            counts_for_sspr = bool(sspr_short) and kind in sspr.methods
            steps.append(PlannedStep(kind=kind, purpose="both" if counts_for_sspr else "mfa"))
            if counts_for_sspr:
                have_sspr.add(kind)
                have_channels.add(channel_family(kind))
                sspr_short -= 1
    if sspr_short:
        candidates = [
            k
            for k in allowed
            if k in sspr.methods
            and METHOD_RULES[k].sspr
            and k not in have_sspr
            and k not in {s.kind for s in steps}
            and channel_family(k) not in have_channels
        ]
        picked: list[MethodKind] = []
        for kind in candidates:
            if len(picked) == sspr_short:
                break
            if channel_family(kind) in {channel_family(p) for p in picked}:
                continue
            would_have = have_sspr | set(picked) | {kind}
            last_pick = len(picked) + 1 == sspr_short
            if (
                kind is MethodKind.SECURITY_QUESTIONS
                and last_pick
                and not sspr.allow_questions_alone
                and _questions_alone(would_have)
            ):
                continue
            picked.append(kind)
        if len(picked) < sspr_short:
            missing.append("sspr")
        steps += [PlannedStep(kind=k, purpose="sspr") for k in picked]
    planned = {s.kind for s in steps}
    alternatives = tuple(
        k
        for k in allowed
        if k not in planned and sum(1 for m in methods if m.kind is k) < METHOD_RULES[k].per_user
    )
    reconfirm_only = not steps and not missing and RegistrationNeed.SSPR_RECONFIRM in need_set
    return Plan(
        steps=tuple(steps),
        alternatives=alternatives,
        reconfirm_only=reconfirm_only,
        unsatisfiable=bool(missing),
        missing=tuple(missing),
    )

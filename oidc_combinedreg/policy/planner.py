"""The registration planner: what methods a user still has to register, and in which order.

Pure core: given the policies, the user's groups, the methods they have and the method kinds the
deployment can register, it returns the plan and the alternatives. It is the single source of "what
does this user still need".
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..methods.kinds import METHOD_RULES, MethodKind
from ..store.base import MethodRecord
from .config import PolicyConfig
from .signin import RegistrationNeed

__all__ = ["Plan", "plan_registration"]

_MFA_NEEDS = {
    RegistrationNeed.MFA_REGISTRATION_ENFORCED,
    RegistrationNeed.PER_USER_MFA_ENFORCED,
    RegistrationNeed.CONDITIONAL_ACCESS_MFA,
    RegistrationNeed.ADMIN_REREGISTER,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    #: method kinds to register, most secure first
    steps: tuple[MethodKind, ...]
    #: every other kind the user may register instead ("I want to set up a different method")
    alternatives: tuple[MethodKind, ...]
    #: only re-confirmation is due (no new method needed)
    reconfirm_only: bool = False
    #: the policies cannot be met with the methods this user is allowed (an admin must act)
    unsatisfiable: bool = False


def plan_registration(
    *,
    needs: Sequence[RegistrationNeed],
    user_id: str,
    groups: frozenset[str],
    methods: Sequence[MethodRecord],
    policies: PolicyConfig,
    registrable: Collection[MethodKind],
) -> Plan:
    """The fewest methods that make the user compliant with MFA and SSPR policies at once."""
    allowed = sorted(
        (
            k
            for k in registrable
            if METHOD_RULES[k].user_registers and policies.method_allowed(k, user_id, groups)
        ),
        key=lambda k: METHOD_RULES[k].rank,
    )
    have = {m.kind for m in methods}
    need_mfa = any(n in _MFA_NEEDS for n in needs) and not any(METHOD_RULES[k].mfa for k in have)
    sspr = policies.sspr
    need_sspr = 0
    if RegistrationNeed.SSPR_REGISTRATION in needs:
        have_sspr = {k for k in have if k in sspr.methods}
        need_sspr = max(0, sspr.methods_required - len(have_sspr))
    steps: list[MethodKind] = []
    if need_mfa:
        mfa_kinds = [k for k in allowed if METHOD_RULES[k].mfa]
        # Prefer an MFA method that also serves password reset when SSPR still needs methods.
        both = [k for k in mfa_kinds if need_sspr and k in sspr.methods]
        pick = (both or mfa_kinds)[:1]
        steps += pick
        if pick and pick[0] in sspr.methods:
            need_sspr = max(0, need_sspr - 1)
        unsatisfiable = not pick
    else:
        unsatisfiable = False
    if need_sspr:
        sspr_kinds = [k for k in allowed if k in sspr.methods and k not in have and k not in steps]
        if (
            not sspr.allow_questions_alone
            and need_sspr == 1
            and not (have - {MethodKind.SECURITY_QUESTIONS})
            and not steps
        ):
            sspr_kinds = [k for k in sspr_kinds if k is not MethodKind.SECURITY_QUESTIONS]
        steps += sspr_kinds[:need_sspr]
        unsatisfiable = unsatisfiable or len(sspr_kinds) < need_sspr
    alternatives = tuple(
        k for k in allowed if k not in steps and (k not in have or METHOD_RULES[k].per_user > 1)
    )
    reconfirm_only = not steps and not unsatisfiable and RegistrationNeed.SSPR_RECONFIRM in needs
    return Plan(
        steps=tuple(steps),
        alternatives=alternatives,
        reconfirm_only=reconfirm_only,
        unsatisfiable=unsatisfiable,
    )

"""Replace before remove: may a user delete one of their methods? Pure, no I/O.

A delete is refused when it would take the user out of compliance with a policy that applies to
them: the last MFA-capable method while MFA is enforced (the MFA registration policy covers them,
or their per-user MFA state is *enforced*), or a method whose loss leaves fewer password-reset
methods than the SSPR policy requires (or a reset resting on security questions alone, unless the
policy allows it). The answer names what to add first, so the page can say so.

A user who is already out of compliance may still delete methods that do not count towards the
unmet requirement: the rule stops things getting worse, it does not lock the page.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..directory import PerUserMfa
from ..exceptions import CombinedRegError
from ..methods.kinds import METHOD_RULES, MethodKind, channel_family
from ..store.base import MethodRecord
from .config import PolicyConfig
from .planner import sspr_kinds

__all__ = [
    "ReplaceFirst",
    "Shortfall",
    "UserFacts",
    "delete_shortfalls",
    "kinds_that_fix",
    "mfa_enforced",
]


class Shortfall(StrEnum):
    """A requirement the delete would break."""

    #: the last MFA-capable method, while MFA is enforced for the user
    MFA = "mfa"
    #: fewer password-reset methods than the SSPR policy requires
    SSPR = "sspr"


class ReplaceFirst(CombinedRegError):
    """A delete was refused: it would break ``shortfalls``; the user must add a method first."""

    def __init__(self, shortfalls: tuple[Shortfall, ...]) -> None:
        #: the requirements the delete would have broken
        self.shortfalls = shortfalls
        super().__init__("replace before remove: " + ", ".join(shortfalls))


@dataclass(frozen=True, kw_only=True, slots=True)
class UserFacts:
    """What the policies need to know about the user (from the host's Directory)."""

    user_id: str
    groups: frozenset[str] = frozenset()
    per_user_mfa: PerUserMfa = PerUserMfa.DISABLED


def mfa_enforced(user: UserFacts, policies: PolicyConfig) -> bool:
    """Must this user keep an MFA-capable method?"""
    reg = policies.mfa_registration
    by_policy = reg.enforced and reg.audience.contains(user.user_id, user.groups)
    return by_policy or user.per_user_mfa is PerUserMfa.ENFORCED


def _channels(kinds: Collection[MethodKind]) -> frozenset[str]:
    # Distinct channels count, as in the planner: a push app and a TOTP app are one phone app.
    return frozenset(channel_family(k) for k in kinds)


def _sspr_ok(kinds: Collection[MethodKind], policies: PolicyConfig) -> bool:
    sspr = policies.sspr
    if len(_channels(kinds)) < sspr.methods_required:
        return False
    return sspr.allow_questions_alone or set(kinds) != {MethodKind.SECURITY_QUESTIONS}


def delete_shortfalls(
    methods: Sequence[MethodRecord], method_id: str, user: UserFacts, policies: PolicyConfig
) -> tuple[Shortfall, ...]:
    """The requirements deleting ``method_id`` would break (empty: the delete may go ahead).

    ``methods`` are all the user's methods, the Directory's office phone included (it stays).
    An id that is not among them breaks nothing (the caller refuses it for its own reason).
    """
    target = next((m for m in methods if m.id == method_id), None)
    if target is None:
        return ()
    rest = [m for m in methods if m.id != method_id]
    out: list[Shortfall] = []
    if (
        METHOD_RULES[target.kind].mfa
        and mfa_enforced(user, policies)
        and not any(METHOD_RULES[m.kind].mfa for m in rest)
    ):
        out.append(Shortfall.MFA)
    if policies.sspr.applies(user.groups):
        before, after = sspr_kinds(methods, policies), sspr_kinds(rest, policies)
        lost_channel = _channels(after) != _channels(before)
        if not _sspr_ok(after, policies) and (lost_channel or _sspr_ok(before, policies)):
            out.append(Shortfall.SSPR)
    return tuple(out)


def kinds_that_fix(
    shortfall: Shortfall,
    methods: Sequence[MethodRecord],
    method_id: str,
    user: UserFacts,
    policies: PolicyConfig,
) -> tuple[MethodKind, ...]:
    """Kinds the user may register themselves that would make the delete possible, most secure
    first. The web layer narrows them to what it can register and the per-user limits."""
    target = next((m for m in methods if m.id == method_id), None)
    have = {channel_family(m.kind) for m in methods if m.id != method_id}
    out = []
    for kind in sorted(MethodKind, key=lambda k: METHOD_RULES[k].rank):
        rules = METHOD_RULES[kind]
        if not rules.user_registers or not policies.method_allowed(kind, user.user_id, user.groups):
            continue
        if shortfall is Shortfall.MFA and rules.mfa:
            out.append(kind)
        elif shortfall is Shortfall.SSPR and rules.sspr and kind in policies.sspr.methods:
            # A second method of a kind already counted adds nothing; the target's own kind is
            # fine (a new phone before the old one goes).
            if channel_family(kind) not in have or (target is not None and kind is target.kind):
                out.append(kind)
    return tuple(out)

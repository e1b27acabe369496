"""What the engine answers: a :class:`Decision`, with one :class:`PolicyResult` per policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from .context import SignInContext
from .model import Control, IPAddress, Policy, PolicyState

__all__ = [
    "Decision",
    "Outcome",
    "PolicyResult",
    "Reason",
    "Requirement",
    "simplify_requirements",
]


class Outcome(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"
    #: allowed once the ``missing`` requirements are met (e.g. after an MFA step)
    REQUIRE_CONTROLS = "require-controls"


class Reason(StrEnum):
    """Why a policy applied or not: the first check that failed, in the order listed here."""

    APPLIED = "applied"
    POLICY_OFF = "policy-off"
    TARGET_NOT_MATCHED = "target-not-matched"
    APPLICATION_EXCLUDED = "application-excluded"
    USER_NOT_INCLUDED = "user-not-included"
    USER_EXCLUDED = "user-excluded"
    LOCATION_NOT_INCLUDED = "location-not-included"
    LOCATION_EXCLUDED = "location-excluded"
    CLIENT_APP_NOT_MATCHED = "client-app-not-matched"
    SIGN_IN_RISK_NOT_MATCHED = "sign-in-risk-not-matched"


# what phishing-resistant MFA implies; used to drop requirements another one already covers
_IMPLIES: dict[Control, frozenset[Control]] = {
    Control.MFA: frozenset({Control.MFA}),
    Control.PHISHING_RESISTANT_MFA: frozenset({Control.PHISHING_RESISTANT_MFA, Control.MFA}),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Requirement:
    """One requirement: any one of ``one_of`` meets it. A grant with AND gives one per control."""

    one_of: frozenset[Control]

    def met_by(self, satisfied: frozenset[Control]) -> bool:
        return not self.one_of.isdisjoint(satisfied)

    def implies(self, other: Requirement) -> bool:
        """Meeting self always meets other."""
        return all(not _IMPLIES[c].isdisjoint(other.one_of) for c in self.one_of)

    def sort_key(self) -> tuple[str, ...]:
        return tuple(sorted(self.one_of))

    def __str__(self) -> str:
        names = sorted(self.one_of)
        return names[0] if len(names) == 1 else "one of " + " / ".join(names)


def _reduce(requirement: Requirement) -> Requirement:
    """Drop a choice that implies another choice: "mfa or phishing-resistant mfa" is "mfa"."""
    one_of = requirement.one_of
    kept = frozenset(c for c in one_of if not any(d != c and d in _IMPLIES[c] for d in one_of))
    return requirement if kept == one_of else Requirement(one_of=kept)


def simplify_requirements(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    """Deduplicate, drop those another one implies, and sort: the combined AND of all of them."""
    unique = sorted({_reduce(r) for r in requirements}, key=Requirement.sort_key)
    kept = [
        r
        for r in unique
        if not any(o is not r and o.implies(r) and not r.implies(o) for o in unique)
    ]
    return tuple(kept)


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyResult:
    """One policy in one evaluation. Report-only results say what *would* have happened."""

    name: str
    state: PolicyState
    applied: bool
    reason: Reason
    #: the policy blocks (when it applies)
    block: bool
    #: what the policy requires when it applies (empty for block)
    requires: tuple[Requirement, ...]
    #: what this policy alone leads to (``None`` when it does not apply)
    outcome: Outcome | None
    #: the policy itself, for what-if explanations
    policy: Policy = field(repr=False, compare=False)

    @property
    def report_only(self) -> bool:
        return self.state is PolicyState.REPORT_ONLY

    @property
    def enforced(self) -> bool:
        return self.applied and self.state is PolicyState.ON


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The answer. Only ``outcome`` and ``missing`` matter for enforcement; the rest explains it."""

    outcome: Outcome
    #: one line for logs and the what-if summary
    reason: str
    correlation_id: str
    context: SignInContext
    #: the address the locations were matched against (``None`` when it was unusable)
    client_ip: IPAddress | None
    #: named locations (and inline networks) that contain ``client_ip``
    locations: tuple[str, ...] = ()
    in_trusted_location: bool = False
    policies: tuple[PolicyResult, ...] = ()
    #: requirements of every enforced grant policy that applies (all must be met)
    requirements: tuple[Requirement, ...] = ()
    #: those of ``requirements`` the session has not met yet
    missing: tuple[Requirement, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    @property
    def blocking_policies(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.policies if r.enforced and r.block)

    @property
    def report_only_results(self) -> tuple[PolicyResult, ...]:
        return tuple(r for r in self.policies if r.report_only and r.applied)

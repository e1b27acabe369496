"""The evaluation, with Microsoft Entra's semantics.

- Every policy that applies is enforced; a policy applies when the user is included and not
  excluded, the target matches, and every configured condition matches.
- Block wins over grant; the requirements of all applying grant policies must all be met.
- Report-only policies are evaluated and reported, never enforced; off policies are not evaluated.
- A user-action policy applies only to that user action, an application policy only to applications.
- An unusable client address blocks (fail closed): we cannot tell where the user is.

The config is compiled once (sets, one location index); :meth:`Engine.evaluate` does one bisect
and a few set lookups per policy. Per-policy results are values computed at compile time too.
"""

from __future__ import annotations

import ipaddress
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from .context import SignInContext, Target, TargetKind, close_controls
from .decision import Decision, Outcome, PolicyResult, Reason, Requirement, simplify_requirements
from .locations import LocationIndex, normalize_ip
from .model import (
    ClientAppType,
    ConditionalAccessConfig,
    Control,
    IPAddress,
    IPNetwork,
    LocationKind,
    LocationRef,
    Operator,
    Policy,
    PolicyState,
    RiskLevel,
    UserAction,
)

__all__ = ["Engine", "Locator", "new_correlation_id"]


class Locator(Protocol):
    """Anything that tells which location ids contain an address (the engine's only lookup)."""

    def match(self, ip: IPAddress) -> frozenset[str]: ...


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def location_id(ref: LocationRef) -> str:
    """Named locations are known by name, inline networks by their normalized CIDR."""
    return str(ref.network) if ref.network is not None else ref.text


def _ranges(config: ConditionalAccessConfig) -> Iterator[tuple[str, IPNetwork]]:
    for loc in config.named_locations:
        for net in loc.ranges:
            yield loc.name, net
    for policy in config.policies:
        cond = policy.conditions.locations
        for ref in () if cond is None else cond.include + cond.exclude:
            if ref.network is not None:
                yield location_id(ref), ref.network


def _closed_control_sets() -> set[frozenset[Control]]:
    subsets = itertools.chain.from_iterable(
        itertools.combinations(list(Control), n) for n in range(len(Control) + 1)
    )
    return {close_controls(s) for s in subsets}


def _requirements(policy: Policy) -> tuple[Requirement, ...]:
    grant = policy.grant
    if grant.block:
        return ()
    if grant.operator is Operator.OR:
        return simplify_requirements([Requirement(one_of=frozenset(grant.controls))])
    return simplify_requirements(Requirement(one_of=frozenset({c})) for c in grant.controls)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One policy as sets, with its possible results computed in advance."""

    state: PolicyState
    include_all: bool
    include_users: frozenset[str]
    include_groups: frozenset[str]
    exclude_users: frozenset[str]
    exclude_groups: frozenset[str]
    user_action: str | None
    all_apps: bool
    apps: frozenset[str]
    exclude_apps: frozenset[str]
    has_locations: bool
    include_any: bool
    include_trusted: bool
    include_ids: frozenset[str]
    exclude_trusted: bool
    exclude_ids: frozenset[str]
    client_apps: frozenset[ClientAppType] | None
    risks: frozenset[RiskLevel] | None
    block: bool
    requires: tuple[Requirement, ...]
    not_applied: Mapping[Reason, PolicyResult]
    applied: Mapping[frozenset[Control], PolicyResult]

    def target_reason(self, target: Target) -> Reason | None:
        """The checks that depend only on the target (done once per target, see ``_Plan``)."""
        if self.state is PolicyState.OFF:
            return Reason.POLICY_OFF
        if target.kind is TargetKind.USER_ACTION:
            return None if target.value == self.user_action else Reason.TARGET_NOT_MATCHED
        if self.user_action is not None or not (self.all_apps or target.value in self.apps):
            return Reason.TARGET_NOT_MATCHED
        if target.value in self.exclude_apps:
            return Reason.APPLICATION_EXCLUDED
        return None

    def condition_reason(
        self, ctx: SignInContext, locs: frozenset[str], trusted: bool
    ) -> Reason | None:
        """``None`` when the user and every condition match, else the first that does not."""
        groups = ctx.groups
        if not (
            self.include_all
            or ctx.user_id in self.include_users
            or not groups.isdisjoint(self.include_groups)
        ):
            return Reason.USER_NOT_INCLUDED
        if ctx.user_id in self.exclude_users or not groups.isdisjoint(self.exclude_groups):
            return Reason.USER_EXCLUDED
        if self.has_locations:
            if not (
                self.include_any
                or (self.include_trusted and trusted)
                or not locs.isdisjoint(self.include_ids)
            ):
                return Reason.LOCATION_NOT_INCLUDED
            if (self.exclude_trusted and trusted) or not locs.isdisjoint(self.exclude_ids):
                return Reason.LOCATION_EXCLUDED
        if self.client_apps is not None and ctx.client_app not in self.client_apps:
            return Reason.CLIENT_APP_NOT_MATCHED
        if self.risks is not None and ctx.sign_in_risk not in self.risks:
            return Reason.SIGN_IN_RISK_NOT_MATCHED
        return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """For one target: the results fixed by state and target alone, and the policies left to check.

    Every client id that no policy names behaves alike, so there are few plans: one per user
    action, one per named client id, one for any other client id.
    """

    fixed: tuple[PolicyResult | None, ...]
    candidates: tuple[tuple[int, _Compiled], ...]

    @classmethod
    def build(cls, policies: tuple[_Compiled, ...], target: Target) -> _Plan:
        fixed: list[PolicyResult | None] = []
        candidates: list[tuple[int, _Compiled]] = []
        for i, cp in enumerate(policies):
            reason = cp.target_reason(target)
            fixed.append(None if reason is None else cp.not_applied[reason])
            if reason is None:
                candidates.append((i, cp))
        return cls(tuple(fixed), tuple(candidates))


#: stands for every client id that no policy names (cannot collide: ids never hold NUL)
_OTHER_APP = Target.application("\x00other")


def _result(policy: Policy, reason: Reason, outcome: Outcome | None) -> PolicyResult:
    return PolicyResult(
        name=policy.name,
        state=policy.state,
        applied=reason is Reason.APPLIED,
        reason=reason,
        block=policy.grant.block,
        requires=_requirements(policy),
        outcome=outcome,
        policy=policy,
    )


def _applied_outcome(policy: Policy, satisfied: frozenset[Control]) -> Outcome:
    if policy.grant.block:
        return Outcome.BLOCK
    if all(r.met_by(satisfied) for r in _requirements(policy)):
        return Outcome.ALLOW
    return Outcome.REQUIRE_CONTROLS


def _compile(policy: Policy) -> _Compiled:
    a, t = policy.assignments, policy.target
    cond = policy.conditions
    loc = cond.locations
    include = () if loc is None else loc.include
    exclude = () if loc is None else loc.exclude
    named = (LocationKind.NAMED, LocationKind.NETWORK)
    return _Compiled(
        state=policy.state,
        include_all=a.include_all,
        include_users=frozenset(a.include_users),
        include_groups=frozenset(a.include_groups),
        exclude_users=frozenset(a.exclude_users),
        exclude_groups=frozenset(a.exclude_groups),
        user_action=None if t.user_action is None else t.user_action.value,
        all_apps=t.all_applications,
        apps=frozenset(t.applications),
        exclude_apps=frozenset(t.exclude_applications),
        has_locations=loc is not None,
        include_any=any(r.kind is LocationKind.ANY for r in include),
        include_trusted=any(r.kind is LocationKind.ALL_TRUSTED for r in include),
        include_ids=frozenset(location_id(r) for r in include if r.kind in named),
        exclude_trusted=any(r.kind is LocationKind.ALL_TRUSTED for r in exclude),
        exclude_ids=frozenset(location_id(r) for r in exclude if r.kind in named),
        client_apps=None if cond.client_app_types is None else frozenset(cond.client_app_types),
        risks=None if cond.sign_in_risk is None else frozenset(cond.sign_in_risk),
        block=policy.grant.block,
        requires=_requirements(policy),
        not_applied={r: _result(policy, r, None) for r in Reason if r is not Reason.APPLIED},
        applied={
            s: _result(policy, Reason.APPLIED, _applied_outcome(policy, s))
            for s in _closed_control_sets()
        },
    )


def _plan_targets(config: ConditionalAccessConfig) -> Iterator[Target]:
    yield from (Target.user_action(a) for a in UserAction)
    yield _OTHER_APP
    for policy in config.policies:
        for app in policy.target.applications + policy.target.exclude_applications:
            yield Target.application(app)


def _unusable_ip(ctx: SignInContext) -> IPAddress | str:
    """The normalized address, or why there is none (a string)."""
    if ctx.client_ip_malformed:
        return "client IP unknown: the forwarded header was malformed"
    ip = ctx.client_ip
    if ip is None:
        return "client IP unknown"
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return f"client IP {ctx.client_ip!r} is not an address"
    return normalize_ip(ip)


class Engine:
    """Evaluates sign-ins against one config. Build once (at start-up), share between threads."""

    def __init__(
        self,
        config: ConditionalAccessConfig,
        *,
        new_id: Callable[[], str] = new_correlation_id,
        locator: Locator | None = None,
    ) -> None:
        self.config = config
        self._new_id = new_id
        self._locator: Locator = LocationIndex(_ranges(config)) if locator is None else locator
        self._trusted = frozenset(loc.name for loc in config.named_locations if loc.trusted)
        self._policies = tuple(_compile(p) for p in config.policies)
        self._plans = {
            target: _Plan.build(self._policies, target) for target in _plan_targets(config)
        }

    def _plan(self, target: Target) -> _Plan:
        plan = self._plans.get(target)
        if plan is None:
            if target.kind is TargetKind.APPLICATION:
                return self._plans[_OTHER_APP]
            return _Plan.build(self._policies, target)  # an action no policy names: all fixed
        return plan

    def locations_of(self, ip: IPAddress) -> frozenset[str]:
        """Location ids containing ``ip`` (named locations by name, inline networks by CIDR)."""
        return self._locator.match(normalize_ip(ip))

    def evaluate(self, ctx: SignInContext) -> Decision:
        ip = _unusable_ip(ctx)
        if isinstance(ip, str):
            return Decision(
                outcome=Outcome.BLOCK,
                reason=ip,
                correlation_id=self._new_id(),
                context=ctx,
                client_ip=None,
            )
        locs = self._locator.match(ip)
        trusted = not locs.isdisjoint(self._trusted)
        plan = self._plan(ctx.target)
        results = list(plan.fixed)
        blocked: list[str] = []
        requirements: list[Requirement] = []
        for i, cp in plan.candidates:
            reason = cp.condition_reason(ctx, locs, trusted)
            if reason is not None:
                results[i] = cp.not_applied[reason]
                continue
            result = results[i] = cp.applied[ctx.satisfied]
            if cp.state is PolicyState.ON:
                if cp.block:
                    blocked.append(result.name)
                else:
                    requirements.extend(cp.requires)
        combined = simplify_requirements(requirements) if requirements else ()
        missing = tuple(r for r in combined if not r.met_by(ctx.satisfied))
        outcome, summary = self._summary(blocked, missing, combined)
        return Decision(
            outcome=outcome,
            reason=summary,
            correlation_id=self._new_id(),
            context=ctx,
            client_ip=ip,
            locations=tuple(sorted(locs)),
            in_trusted_location=trusted,
            policies=tuple(results),  # type: ignore[arg-type]  # every slot is filled
            requirements=combined,
            missing=missing,
        )

    def _summary(
        self,
        blocked: list[str],
        missing: tuple[Requirement, ...],
        combined: tuple[Requirement, ...],
    ) -> tuple[Outcome, str]:
        if blocked:
            return Outcome.BLOCK, "blocked by " + ", ".join(repr(n) for n in blocked)
        if missing:
            return Outcome.REQUIRE_CONTROLS, "requires " + " and ".join(str(r) for r in missing)
        if combined:
            return Outcome.ALLOW, "every requirement is met"
        if not self._policies:
            return Outcome.ALLOW, "no conditional access policies"
        return Outcome.ALLOW, "no enforced policy blocks or requires anything"

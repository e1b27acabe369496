"""What If: evaluate a made-up sign-in and explain, policy by policy, what applied and why.

``combinedreg what-if`` is a thin wrapper over :func:`what_if` and :func:`render_text` /
:func:`render_json`; hosts can call them from Python too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .context import SignInContext, Target
from .decision import Decision, Outcome, PolicyResult, Reason
from .engine import Engine, new_correlation_id
from .model import (
    ClientAppType,
    ConditionalAccessConfig,
    Control,
    IPAddress,
    LocationCondition,
    Operator,
    Policy,
    RiskLevel,
    UserAction,
)

__all__ = ["decision_to_dict", "render_json", "render_text", "what_if"]


def what_if(
    config: ConditionalAccessConfig,
    user: str,
    groups: Iterable[str],
    ip: IPAddress | str,
    *,
    action: UserAction | str | None = None,
    app: str | None = None,
    client_app: ClientAppType | str = ClientAppType.BROWSER,
    sign_in_risk: RiskLevel | str = RiskLevel.NONE,
    satisfied: Iterable[Control | str] = (),
    new_id: Callable[[], str] = new_correlation_id,
) -> Decision:
    """Evaluate a sign-in of ``user`` from ``ip`` to a user ``action`` or an ``app``."""
    if (action is None) == (app is None):
        raise ValueError("give exactly one of action or app")
    target = Target.application(app) if app is not None else Target.user_action(action or "")
    ctx = SignInContext(
        user_id=user,
        groups=frozenset(groups),
        client_ip=ip,
        target=target,
        client_app=ClientAppType(client_app),
        sign_in_risk=RiskLevel(sign_in_risk),
        satisfied=frozenset(Control(c) for c in satisfied),
    )
    return Engine(config, new_id=new_id).evaluate(ctx)


# -- explanations -------------------------------------------------------------------------------


def _names(values: Iterable[str]) -> str:
    listed = sorted(values)
    return ", ".join(repr(v) for v in listed) if listed else "none"


def _locations_text(cond: LocationCondition | None, which: str) -> str:
    refs = () if cond is None else getattr(cond, which)
    return ", ".join(r.text for r in refs)


def _target_text(policy: Policy) -> str:
    t = policy.target
    if t.user_action is not None:
        return f"user action {t.user_action.value}"
    apps = "all applications" if t.all_applications else "applications " + _names(t.applications)
    if t.exclude_applications:
        apps += " except " + _names(t.exclude_applications)
    return apps


def _why(result: PolicyResult, decision: Decision) -> str:
    """One sentence, with this sign-in's facts, for why the policy did not apply."""
    p, ctx = result.policy, decision.context
    a, cond = p.assignments, p.conditions
    where = f"client IP {decision.client_ip} is in {_names(decision.locations)}"
    texts = {
        Reason.POLICY_OFF: "the policy is off",
        Reason.USER_NOT_INCLUDED: (
            f"user {ctx.user_id!r} is not included (include_users {_names(a.include_users)}, "
            f"include_groups {_names(a.include_groups)})"
        ),
        Reason.USER_EXCLUDED: (
            "user is excluded ("
            + _names(({ctx.user_id} & set(a.exclude_users)) | (ctx.groups & set(a.exclude_groups)))
            + ")"
        ),
        Reason.TARGET_NOT_MATCHED: f"the policy targets {_target_text(p)}, not {ctx.target}",
        Reason.APPLICATION_EXCLUDED: f"application {ctx.target.value!r} is excluded",
        Reason.LOCATION_NOT_INCLUDED: (
            f"{where}, not in include ({_locations_text(cond.locations, 'include')})"
        ),
        Reason.LOCATION_EXCLUDED: (
            f"{where}, excluded by ({_locations_text(cond.locations, 'exclude')})"
        ),
        Reason.CLIENT_APP_NOT_MATCHED: f"client app {ctx.client_app.value} is not selected",
        Reason.SIGN_IN_RISK_NOT_MATCHED: f"sign-in risk {ctx.sign_in_risk.value} is not selected",
    }
    return texts.get(result.reason, result.reason.value)


def _grant_text(result: PolicyResult) -> str:
    if result.block:
        return "block"
    joiner = " and " if result.policy.grant.operator is Operator.AND else " or "
    return "require " + joiner.join(c.value for c in result.policy.grant.controls)


_ENFORCED = {
    Outcome.ALLOW: "requirements met",
    Outcome.BLOCK: "blocks",
    Outcome.REQUIRE_CONTROLS: "requirements not met yet",
}
_REPORTED = {
    Outcome.ALLOW: "would allow",
    Outcome.BLOCK: "would block",
    Outcome.REQUIRE_CONTROLS: "would require controls not met yet",
}


def _applied_line(result: PolicyResult) -> str:
    outcome = result.outcome or Outcome.ALLOW
    if result.report_only:
        verdict = _REPORTED[outcome] + " (report-only: not enforced)"
    else:
        verdict = _ENFORCED[outcome]
    return f"  [{result.state.value}] {result.name}: {_grant_text(result)} -> {verdict}"


def _ip_text(decision: Decision) -> str:
    if decision.client_ip is not None:
        return str(decision.client_ip)
    return f"{decision.context.client_ip!r} (unusable)"


def render_text(decision: Decision) -> str:
    """A report like Entra's What If: the sign-in, the result, then every policy and why."""
    ctx = decision.context
    lines = [
        f"Conditional Access what-if (correlation id {decision.correlation_id})",
        f"  user: {ctx.user_id}  groups: {_names(ctx.groups)}",
        f"  client IP: {_ip_text(decision)}"
        f"  locations: {_names(decision.locations)}"
        f"{' (trusted)' if decision.in_trusted_location else ''}",
        f"  target: {ctx.target}  client app: {ctx.client_app.value}"
        f"  sign-in risk: {ctx.sign_in_risk.value}  satisfied: {_names(ctx.satisfied)}",
        "",
        f"Result: {decision.outcome.value.upper()} - {decision.reason}",
    ]
    if decision.requirements:
        lines.append("  requirements: " + "; ".join(str(r) for r in decision.requirements))
    if decision.missing:
        lines.append("  missing: " + "; ".join(str(r) for r in decision.missing))
    if decision.client_ip is None:
        lines += ["", "No policy was evaluated: without a usable client IP the engine blocks."]
        return "\n".join(lines) + "\n"
    applied = [r for r in decision.policies if r.applied]
    skipped = [r for r in decision.policies if not r.applied]
    lines += ["", f"Policies that apply ({len(applied)}):"]
    lines += [_applied_line(r) for r in applied] or ["  none"]
    lines += ["", f"Policies that do not apply ({len(skipped)}):"]
    lines += [f"  [{r.state.value}] {r.name}: {_why(r, decision)}" for r in skipped] or ["  none"]
    return "\n".join(lines) + "\n"


def _policy_dict(result: PolicyResult, decision: Decision) -> dict[str, Any]:
    return {
        "name": result.name,
        "state": result.state.value,
        "applied": result.applied,
        "reason": result.reason.value,
        "explanation": None if result.applied else _why(result, decision),
        "report_only": result.report_only,
        "grant": _grant_text(result),
        "requires": [sorted(r.one_of) for r in result.requires],
        "outcome": None if result.outcome is None else result.outcome.value,
    }


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """JSON-safe: for ``--json``, audit logs and the admin API."""
    ctx = decision.context
    return {
        "correlation_id": decision.correlation_id,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "user": ctx.user_id,
        "groups": sorted(ctx.groups),
        "target": {"kind": ctx.target.kind.value, "value": ctx.target.value},
        "client_ip": None if decision.client_ip is None else str(decision.client_ip),
        "locations": list(decision.locations),
        "in_trusted_location": decision.in_trusted_location,
        "client_app": ctx.client_app.value,
        "sign_in_risk": ctx.sign_in_risk.value,
        "satisfied": sorted(ctx.satisfied),
        "requirements": [sorted(r.one_of) for r in decision.requirements],
        "missing": [sorted(r.one_of) for r in decision.missing],
        "policies": [_policy_dict(r, decision) for r in decision.policies],
    }


def render_json(decision: Decision) -> str:
    return json.dumps(decision_to_dict(decision), indent=2) + "\n"

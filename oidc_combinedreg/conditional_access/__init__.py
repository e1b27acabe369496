"""Conditional Access: named locations, policies, and their evaluation (pure core, no web imports).

Typical use::

    config = read_conditional_access(root_reader)       # once, at start-up
    engine = Engine(config)                             # builds the location index once
    ip = resolve_client_ip(environ.get("REMOTE_ADDR"), config.network,
                           x_forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"))
    decision = engine.evaluate(SignInContext(
        user_id=user.id, groups=user.groups, client_ip=ip.ip,
        client_ip_malformed=ip.malformed, target=REGISTER_SECURITY_INFO,
        satisfied=session_controls))
    if decision.outcome is Outcome.BLOCK: ...
"""

from __future__ import annotations

from .client_ip import ClientIp, ClientIpResolver, IpSource, resolve_client_ip
from .config import parse_conditional_access, parse_network, read_conditional_access
from .context import REGISTER_SECURITY_INFO, SignInContext, Target, TargetKind
from .decision import Decision, Outcome, PolicyResult, Reason, Requirement
from .engine import Engine, Locator, new_correlation_id
from .lint import lint
from .locations import LocationIndex, normalize_ip
from .model import (
    ALL,
    Assignments,
    ClientAppType,
    ConditionalAccessConfig,
    Conditions,
    Control,
    ForwardedHeader,
    Grant,
    LocationCondition,
    LocationKind,
    LocationRef,
    NamedLocation,
    NetworkConfig,
    Operator,
    Policy,
    PolicyState,
    PolicyTarget,
    RiskLevel,
    UserAction,
)
from .whatif import decision_to_dict, render_json, render_text, what_if

__all__ = [
    "ALL",
    "REGISTER_SECURITY_INFO",
    "Assignments",
    "ClientAppType",
    "ClientIp",
    "ClientIpResolver",
    "ConditionalAccessConfig",
    "Conditions",
    "Control",
    "Decision",
    "Engine",
    "ForwardedHeader",
    "Grant",
    "IpSource",
    "LocationCondition",
    "LocationIndex",
    "LocationKind",
    "LocationRef",
    "Locator",
    "NamedLocation",
    "NetworkConfig",
    "Operator",
    "Outcome",
    "Policy",
    "PolicyResult",
    "PolicyState",
    "PolicyTarget",
    "Reason",
    "Requirement",
    "RiskLevel",
    "SignInContext",
    "Target",
    "TargetKind",
    "UserAction",
    "decision_to_dict",
    "lint",
    "new_correlation_id",
    "normalize_ip",
    "parse_conditional_access",
    "parse_network",
    "read_conditional_access",
    "render_json",
    "render_text",
    "resolve_client_ip",
    "what_if",
]

"""The Conditional Access configuration as values: named locations, policies and the network setup.

Everything here is parsed once at start-up (see :mod:`.config`) and never changes. Tuples keep the
file's order so that warnings and what-if output can name ``conditional_access[2]`` and friends; the
engine compiles them into sets once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ALL",
    "ClientAppType",
    "ConditionalAccessConfig",
    "Conditions",
    "Control",
    "ForwardedHeader",
    "Grant",
    "IPAddress",
    "IPNetwork",
    "LocationCondition",
    "LocationKind",
    "LocationRef",
    "NamedLocation",
    "NetworkConfig",
    "Operator",
    "Policy",
    "PolicyState",
    "PolicyTarget",
    "RiskLevel",
    "UserAction",
    "Assignments",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the word that means "everyone" in ``include_users`` and "every client" in ``applications``
ALL = "all"


class PolicyState(StrEnum):
    ON = "on"
    OFF = "off"
    #: evaluated and reported, never enforced
    REPORT_ONLY = "report-only"


class UserAction(StrEnum):
    #: opening the registration pages (interrupt wizard or manage mode)
    REGISTER_SECURITY_INFO = "register-security-information"


class ClientAppType(StrEnum):
    BROWSER = "browser"
    MOBILE_DESKTOP = "mobile-desktop"
    OTHER = "other"


class RiskLevel(StrEnum):
    """Sign-in risk as the host judges it; the engine only compares levels."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Control(StrEnum):
    """Grant controls. Phishing-resistant MFA also satisfies plain MFA."""

    MFA = "mfa"
    PHISHING_RESISTANT_MFA = "phishing-resistant-mfa"


class Operator(StrEnum):
    #: every listed control is required ("Require all the selected controls")
    AND = "and"
    #: one of the listed controls is enough ("Require one of the selected controls")
    OR = "or"


class ForwardedHeader(StrEnum):
    X_FORWARDED_FOR = "x-forwarded-for"
    FORWARDED = "forwarded"


class LocationKind(StrEnum):
    ANY = "any"
    ALL_TRUSTED = "all-trusted"
    #: a ``[[named_locations]]`` entry, by name
    NAMED = "named"
    #: a CIDR written inline in the policy (an anonymous, untrusted location)
    NETWORK = "network"


@dataclass(frozen=True, kw_only=True, slots=True)
class NamedLocation:
    name: str
    ranges: tuple[IPNetwork, ...] = ()
    trusted: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Assignments:
    """Who a policy is for. Exclusion wins over inclusion."""

    include_all: bool = False
    include_users: tuple[str, ...] = ()
    include_groups: tuple[str, ...] = ()
    exclude_users: tuple[str, ...] = ()
    exclude_groups: tuple[str, ...] = ()

    @property
    def has_exclusions(self) -> bool:
        return bool(self.exclude_users or self.exclude_groups)


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyTarget:
    """What a policy protects: one user action, or applications (OIDC client ids)."""

    user_action: UserAction | None = None
    all_applications: bool = False
    applications: tuple[str, ...] = ()
    exclude_applications: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class LocationRef:
    """One entry of ``conditions.locations.include`` / ``exclude``, as written."""

    kind: LocationKind
    #: the text in the file: ``any``, ``all-trusted``, a location name, or a CIDR
    text: str
    network: IPNetwork | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LocationCondition:
    include: tuple[LocationRef, ...] = (LocationRef(kind=LocationKind.ANY, text="any"),)
    exclude: tuple[LocationRef, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Conditions:
    """Optional conditions; ``None`` means not configured (matches everything)."""

    locations: LocationCondition | None = None
    client_app_types: tuple[ClientAppType, ...] | None = None
    sign_in_risk: tuple[RiskLevel, ...] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """Block access, or grant it when ``controls`` are met (all of them, or one of them)."""

    block: bool = False
    controls: tuple[Control, ...] = ()
    operator: Operator = Operator.AND


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    name: str
    state: PolicyState
    assignments: Assignments
    target: PolicyTarget
    conditions: Conditions = field(default_factory=Conditions)
    grant: Grant


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """``[network]``: which peers may tell us the client address, and in which header."""

    trusted_proxies: tuple[IPNetwork, ...] = ()
    forwarded_header: ForwardedHeader = ForwardedHeader.X_FORWARDED_FOR


@dataclass(frozen=True, kw_only=True, slots=True)
class ConditionalAccessConfig:
    named_locations: tuple[NamedLocation, ...] = ()
    policies: tuple[Policy, ...] = ()
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def location(self, name: str) -> NamedLocation | None:
        return next((loc for loc in self.named_locations if loc.name == name), None)

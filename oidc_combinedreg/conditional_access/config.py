"""Reads ``[[named_locations]]``, ``[[conditional_access]]`` and ``[network]`` from the config file.

Every problem is reported with its path, e.g.
``conditional_access[2].conditions.locations.exclude[0]: '10.0.0.0/33' is not a network``, through
the shared :class:`~oidc_combinedreg.config.reader.Reader`. Warnings that do not stop a server live
in :mod:`.lint`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from oidc_combinedreg.config.reader import Reader

from .model import (
    ALL,
    Assignments,
    ClientAppType,
    ConditionalAccessConfig,
    Conditions,
    Control,
    ForwardedHeader,
    Grant,
    IPNetwork,
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

__all__ = ["parse_conditional_access", "parse_network", "read_conditional_access"]

T = TypeVar("T")

_RESERVED = {LocationKind.ANY.value, LocationKind.ALL_TRUSTED.value}
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_network(text: str) -> IPNetwork:
    """A CIDR (or a single address) as a network; ``ValueError`` says what is wrong with it."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a network") from None
        raise ValueError(
            f"{text!r} is not a network: host bits are set (did you mean '{loose}'?)"
        ) from None
    if net.version == 6 and net.subnet_of(_MAPPED):
        # addresses are normalized to IPv4 before matching, so this range could never match
        raise ValueError(f"{text!r} is IPv4-mapped: write the IPv4 network instead")
    return net


def _items(
    r: Reader, key: str, parse: Callable[[str], T], *, required: bool = False
) -> tuple[T, ...] | None:
    """An array of strings, each parsed; a bad item is reported at ``key[i]``. None when absent."""
    if not r.has(key):
        r.raw(key)
        if required:
            r.error(key, "required: expected an array of strings")
        return None
    value = r.raw(key)
    if not isinstance(value, list):
        r.error(key, "expected an array of strings")
        return ()
    out: list[T] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            r.error(f"{key}[{i}]", "expected a string")
            continue
        try:
            out.append(parse(item))
        except ValueError as exc:
            r.error(f"{key}[{i}]", str(exc))
    return tuple(out)


def _choice(enum_cls: Callable[[str], T], choices: str) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            return enum_cls(text)
        except ValueError:
            raise ValueError(f"expected one of {choices}, got {text!r}") from None

    return parse


def _enum_choices(values: Any) -> str:
    return ", ".join(repr(v.value) for v in values)


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty string")
    return text


# -- named locations --------------------------------------------------------------------------


def _location_name(text: str) -> str:
    if text in _RESERVED:
        raise ValueError(f"{text!r} is reserved (it means something in policies)")
    if "/" in text:
        raise ValueError("a location name cannot contain '/' (policies read that as a CIDR)")
    return _text(text)


def _read_named_location(r: Reader, seen: dict[str, str]) -> NamedLocation:
    name = r.string("name", non_empty=True)
    if name:
        try:
            _location_name(name)
        except ValueError as exc:
            r.error("name", str(exc))
        if name in seen:
            r.error("name", f"duplicate location name {name!r} (also {seen[name]})")
        seen.setdefault(name, r.path)
    ranges = _items(r, "ranges", parse_network, required=True) or ()
    trusted = r.boolean("trusted", False)
    r.done()
    return NamedLocation(name=name, ranges=ranges, trusted=trusted)


# -- policies ---------------------------------------------------------------------------------


def _read_assignments(r: Reader) -> Assignments:
    include_users = _items(r, "include_users", _text) or ()
    include_groups = _items(r, "include_groups", _text) or ()
    exclude_users = _items(r, "exclude_users", _text) or ()
    exclude_groups = _items(r, "exclude_groups", _text) or ()
    include_all = ALL in include_users
    if include_all and len(include_users) > 1:
        r.error("include_users", f"'{ALL}' cannot be combined with user ids")
    if not include_users and not include_groups:
        r.error(None, "expected include_users or include_groups (the policy includes nobody)")
    r.done()
    return Assignments(
        include_all=include_all,
        include_users=() if include_all else include_users,
        include_groups=include_groups,
        exclude_users=exclude_users,
        exclude_groups=exclude_groups,
    )


def _read_target(r: Reader) -> PolicyTarget:
    action_choices = _enum_choices(UserAction)
    action = r.choice("user_action", UserAction) if r.has("user_action") else None
    apps = _items(r, "applications", _text)
    excluded = _items(r, "exclude_applications", _text) or ()
    r.done()
    if (action is None) == (apps is None):
        r.error(None, f"expected either user_action ({action_choices}) or applications")
    if excluded and apps is None:
        r.error("exclude_applications", "only allowed with applications")
    if apps == ():
        r.error("applications", "expected at least one client id, or 'all'")
    apps = apps or ()
    all_apps = ALL in apps
    if all_apps and len(apps) > 1:
        r.error("applications", f"'{ALL}' cannot be combined with client ids")
    return PolicyTarget(
        user_action=action,
        all_applications=all_apps,
        applications=() if all_apps else apps,
        exclude_applications=excluded,
    )


def _location_ref(
    names: Mapping[str, NamedLocation], *, exclude: bool
) -> Callable[[str], LocationRef]:
    def parse(text: str) -> LocationRef:
        if text == LocationKind.ANY:
            if exclude:
                raise ValueError("'any' cannot be excluded (use state = \"off\")")
            return LocationRef(kind=LocationKind.ANY, text=text)
        if text == LocationKind.ALL_TRUSTED:
            return LocationRef(kind=LocationKind.ALL_TRUSTED, text=text)
        if "/" in text:
            return LocationRef(kind=LocationKind.NETWORK, text=text, network=parse_network(text))
        if text not in names:
            raise ValueError(f"unknown named location {text!r}")
        return LocationRef(kind=LocationKind.NAMED, text=text)

    return parse


def _read_locations(r: Reader, names: Mapping[str, NamedLocation]) -> LocationCondition:
    include = _items(r, "include", _location_ref(names, exclude=False))
    exclude = _items(r, "exclude", _location_ref(names, exclude=True)) or ()
    r.done()
    if include == ():
        r.error("include", "expected at least one entry ('any', 'all-trusted' or a location)")
    if include and len(include) > 1 and any(i.kind is LocationKind.ANY for i in include):
        r.error("include", "'any' cannot be combined with other entries")
    if include:
        return LocationCondition(include=include, exclude=exclude)
    return LocationCondition(exclude=exclude)


def _read_conditions(r: Reader, names: Mapping[str, NamedLocation]) -> Conditions:
    locations = _read_locations(r.section("locations"), names) if r.has("locations") else None
    r.raw("locations")
    apps = _items(r, "client_app_types", _choice(ClientAppType, _enum_choices(ClientAppType)))
    risk = _items(r, "sign_in_risk", _choice(RiskLevel, _enum_choices(RiskLevel)))
    for key, value in (("client_app_types", apps), ("sign_in_risk", risk)):
        if value == ():
            r.error(key, "expected at least one entry (leave the key out to match all)")
    r.done()
    return Conditions(locations=locations, client_app_types=apps or None, sign_in_risk=risk or None)


def _read_grant(r: Reader) -> Grant:
    block = r.boolean("block", False)
    controls = _items(r, "require", _choice(Control, _enum_choices(Control)))
    operator = r.choice("operator", Operator, Operator.AND)
    if block and controls is not None:
        r.error(None, "block = true cannot be combined with require")
    elif not block and not controls:
        r.error(None, "expected block = true or require = [...] with at least one control")
    if block and r.has("operator"):
        r.error("operator", "only allowed with require")
    r.done()
    return Grant(block=block, controls=() if block else controls or (), operator=operator)


def _read_policy(r: Reader, names: Mapping[str, NamedLocation], seen: dict[str, str]) -> Policy:
    name = r.string("name", non_empty=True)
    if name in seen:
        r.error("name", f"duplicate policy name {name!r} (also {seen[name]})")
    seen.setdefault(name, r.path)
    state = r.choice("state", PolicyState)
    assignments = _read_assignments(r.section("assignments", required=True))
    target = _read_target(r.section("target", required=True))
    conditions = _read_conditions(r.section("conditions"), names)
    grant = _read_grant(r.section("grant", required=True))
    r.done()
    return Policy(
        name=name,
        state=state,
        assignments=assignments,
        target=target,
        conditions=conditions,
        grant=grant,
    )


# -- network ----------------------------------------------------------------------------------


def _read_network(r: Reader) -> NetworkConfig:
    proxies = _items(r, "trusted_proxies", parse_network) or ()
    header = r.choice("forwarded_header", ForwardedHeader, ForwardedHeader.X_FORWARDED_FOR)
    r.done()
    return NetworkConfig(trusted_proxies=proxies, forwarded_header=header)


# -- entry points -----------------------------------------------------------------------------


def read_conditional_access(root: Reader) -> ConditionalAccessConfig:
    """Read the root keys ``named_locations``, ``conditional_access`` and ``network``.

    Problems are added to ``root.problems``; the caller raises (``root.raise_if_errors()``) once
    the whole file has been read. Absent keys mean no locations, no policies (allow), no proxies.
    """
    seen_locations: dict[str, str] = {}
    locations = tuple(
        _read_named_location(r, seen_locations) for r in root.sections("named_locations")
    )
    names = {loc.name: loc for loc in locations}
    seen_policies: dict[str, str] = {}
    policies = tuple(
        _read_policy(r, names, seen_policies) for r in root.sections("conditional_access")
    )
    network = _read_network(root.section("network"))
    return ConditionalAccessConfig(named_locations=locations, policies=policies, network=network)


def parse_conditional_access(data: Mapping[str, Any]) -> ConditionalAccessConfig:
    """Parse a whole (already TOML-decoded) document that holds only these keys; raise on errors.

    For tests and the what-if tool; the server reads the full file through its own root reader.
    """
    root = Reader(data)
    config = read_conditional_access(root)
    root.done()
    root.raise_if_errors()
    return config

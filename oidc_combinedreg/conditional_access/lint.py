"""Warnings about a valid Conditional Access config that probably does not do what was meant.

Errors stop a server (:mod:`.config`); these only show in ``combinedreg check-config``.
"""

from __future__ import annotations

from collections.abc import Iterator

from oidc_combinedreg.exceptions import ConfigProblem

from .model import (
    ConditionalAccessConfig,
    IPNetwork,
    LocationKind,
    NamedLocation,
    Policy,
    PolicyState,
)

__all__ = ["lint"]

#: a trusted range (or a trusted proxy range) shorter than this prefix is suspicious
WIDEST_PREFIX = {4: 8, 6: 16}


def _warning(path: str, message: str) -> ConfigProblem:
    return ConfigProblem(path, message, severity="warning")


def _too_wide(net: IPNetwork) -> bool:
    return net.prefixlen < WIDEST_PREFIX[net.version]


def _location_warnings(i: int, loc: NamedLocation) -> Iterator[ConfigProblem]:
    path = f"named_locations[{i}]"
    if not loc.ranges:
        yield _warning(f"{path}.ranges", f"location {loc.name!r} has no ranges: it matches nothing")
    if not loc.trusted:
        return
    for j, net in enumerate(loc.ranges):
        if _too_wide(net):
            yield _warning(
                f"{path}.ranges[{j}]",
                f"trusted range '{net}' covers more than a /{WIDEST_PREFIX[net.version]}",
            )


def _excluded_untrusted(
    i: int, policy: Policy, config: ConditionalAccessConfig
) -> Iterator[ConfigProblem]:
    locations = policy.conditions.locations
    for j, ref in enumerate(() if locations is None else locations.exclude):
        trusted = False
        if ref.kind is LocationKind.ALL_TRUSTED:
            trusted = True
        elif ref.kind is LocationKind.NAMED:
            loc = config.location(ref.text)
            trusted = loc is not None and loc.trusted
        if not trusted:
            yield _warning(
                f"conditional_access[{i}].conditions.locations.exclude[{j}]",
                f"excludes {ref.text!r}, which is not a trusted location: anyone there is exempt",
            )


def _locks_everyone_out(policy: Policy) -> bool:
    """On, blocks, all users, the user action or all apps, and nothing excluded at all."""
    target, locations = policy.target, policy.conditions.locations
    broad_target = target.user_action is not None or (
        target.all_applications and not target.exclude_applications
    )
    return (
        policy.state is PolicyState.ON
        and policy.grant.block
        and policy.assignments.include_all
        and not policy.assignments.has_exclusions
        and broad_target
        and (locations is None or not locations.exclude)
    )


def _policy_warnings(
    i: int, policy: Policy, config: ConditionalAccessConfig
) -> Iterator[ConfigProblem]:
    yield from _excluded_untrusted(i, policy, config)
    if _locks_everyone_out(policy):
        yield _warning(
            f"conditional_access[{i}]",
            f"policy {policy.name!r} blocks every user, including all admins (lock-out): "
            "exclude a break-glass group or account",
        )


def _network_warnings(config: ConditionalAccessConfig) -> Iterator[ConfigProblem]:
    for j, net in enumerate(config.network.trusted_proxies):
        if _too_wide(net):
            yield _warning(
                f"network.trusted_proxies[{j}]",
                f"'{net}' is very wide: any client in it can choose its own address",
            )


def lint(config: ConditionalAccessConfig) -> list[ConfigProblem]:
    """Every warning, in file order (locations, policies, network)."""
    problems: list[ConfigProblem] = []
    for i, loc in enumerate(config.named_locations):
        problems.extend(_location_warnings(i, loc))
    for i, policy in enumerate(config.policies):
        problems.extend(_policy_warnings(i, policy, config))
    problems.extend(_network_warnings(config))
    return problems

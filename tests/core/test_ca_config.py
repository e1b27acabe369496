"""Parsing the Conditional Access parts of the config file: values, and path-named errors."""

from __future__ import annotations

import copy
import ipaddress
import tomllib
from typing import Any

import pytest

from oidc_combinedreg.conditional_access import (
    ClientAppType,
    ConditionalAccessConfig,
    Control,
    ForwardedHeader,
    LocationKind,
    Operator,
    PolicyState,
    RiskLevel,
    UserAction,
    parse_conditional_access,
    read_conditional_access,
)
from oidc_combinedreg.config.reader import Reader
from oidc_combinedreg.exceptions import ConfigError

SEED_TOML = """
[[named_locations]]
name = "loopback"
ranges = ["127.0.0.0/8", "::1/128"]
trusted = true

[[conditional_access]]
name = "Combined Security Info Registration on Trusted Networks"
state = "on"

[conditional_access.assignments]
include_users = ["all"]
exclude_groups = ["break-glass"]

[conditional_access.target]
user_action = "register-security-information"

[conditional_access.conditions.locations]
include = ["any"]
exclude = ["all-trusted"]

[conditional_access.grant]
block = true
"""


def seed() -> dict[str, Any]:
    return tomllib.loads(SEED_TOML)


def test_seed_scenario_parses_to_the_intended_policy() -> None:
    config = parse_conditional_access(seed())
    (loopback,) = config.named_locations
    assert loopback.trusted
    assert loopback.ranges == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    (policy,) = config.policies
    assert policy.name == "Combined Security Info Registration on Trusted Networks"
    assert policy.state is PolicyState.ON
    assert policy.assignments.include_all
    assert policy.assignments.exclude_groups == ("break-glass",)
    assert policy.target.user_action is UserAction.REGISTER_SECURITY_INFO
    assert policy.conditions.locations is not None
    assert [r.kind for r in policy.conditions.locations.include] == [LocationKind.ANY]
    assert [r.kind for r in policy.conditions.locations.exclude] == [LocationKind.ALL_TRUSTED]
    assert policy.grant.block


def test_a_full_policy_reads_every_key() -> None:
    data = {
        "named_locations": [{"name": "office", "ranges": ["192.0.2.0/24", "2001:db8::/32"]}],
        "conditional_access": [
            {
                "name": "MFA for the portal",
                "state": "report-only",
                "assignments": {
                    "include_groups": ["staff"],
                    "include_users": ["carol"],
                    "exclude_users": ["dave"],
                },
                "target": {"applications": ["portal", "wiki"], "exclude_applications": ["x"]},
                "conditions": {
                    "locations": {"include": ["office", "198.51.100.0/24"]},
                    "client_app_types": ["browser", "mobile-desktop"],
                    "sign_in_risk": ["medium", "high"],
                },
                "grant": {"require": ["mfa", "phishing-resistant-mfa"], "operator": "or"},
            }
        ],
        "network": {"trusted_proxies": ["10.0.0.1", "fd00::/8"], "forwarded_header": "forwarded"},
    }
    config = parse_conditional_access(data)
    (p,) = config.policies
    assert p.state is PolicyState.REPORT_ONLY
    assert p.assignments.include_groups == ("staff",) and not p.assignments.include_all
    assert p.target.applications == ("portal", "wiki")
    assert p.target.exclude_applications == ("x",)
    assert p.conditions.locations is not None
    inline = p.conditions.locations.include[1]
    assert inline.kind is LocationKind.NETWORK
    assert inline.network == ipaddress.ip_network("198.51.100.0/24")
    assert p.conditions.client_app_types == (ClientAppType.BROWSER, ClientAppType.MOBILE_DESKTOP)
    assert p.conditions.sign_in_risk == (RiskLevel.MEDIUM, RiskLevel.HIGH)
    assert p.grant.controls == (Control.MFA, Control.PHISHING_RESISTANT_MFA)
    assert p.grant.operator is Operator.OR
    assert config.network.forwarded_header is ForwardedHeader.FORWARDED
    assert config.network.trusted_proxies[0] == ipaddress.ip_network("10.0.0.1/32")


def test_a_missing_section_means_no_policies() -> None:
    assert parse_conditional_access({}) == ConditionalAccessConfig()


def test_read_leaves_the_root_table_to_its_owner() -> None:
    root = Reader({**seed(), "storage": {"backend": "sqlite"}})
    config = read_conditional_access(root)
    assert len(config.policies) == 1
    assert root.problems == []  # "storage" is someone else's key: not reported here


def app_policy(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "state": "on",
        "assignments": {"include_users": ["all"]},
        "target": {"applications": ["all"]},
        "grant": {"require": ["mfa"]},
    }


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The seed plus two app policies, with ``value`` put at a dotted ``path`` (None deletes)."""
    data = seed()
    data["conditional_access"] += [app_policy("second"), app_policy("third")]
    node: Any = data
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        if isinstance(key, str) and key not in node:
            node[key] = {}
        node = node[key]
    if value is None:
        del node[keys[-1]]
    else:
        node[keys[-1]] = copy.deepcopy(value)
    return data


CA0 = "conditional_access.0"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            "conditional_access.2.conditions.locations",
            {"exclude": ["10.0.0.0/33"]},
            "conditional_access[2].conditions.locations.exclude[0]: '10.0.0.0/33' is not a network",
            id="an inline cidr with a bad prefix names its exact position",
        ),
        pytest.param(
            "named_locations.0.ranges",
            ["127.0.0.0/8", "10.0.0.1/8"],
            "named_locations[0].ranges[1]: '10.0.0.1/8' is not a network: host bits are set "
            "(did you mean '10.0.0.0/8'?)",
            id="a range with host bits set suggests the network",
        ),
        pytest.param(
            "named_locations.0.ranges",
            ["localhost"],
            "named_locations[0].ranges[0]: 'localhost' is not a network",
            id="a host name is not a range",
        ),
        pytest.param(
            "named_locations.0.ranges",
            ["::ffff:10.0.0.0/104"],
            "named_locations[0].ranges[0]: '::ffff:10.0.0.0/104' is IPv4-mapped: write the IPv4 "
            "network instead",
            id="an ipv4-mapped range is refused because it could never match",
        ),
        pytest.param(
            "named_locations.0.ranges",
            None,
            "named_locations[0].ranges: required: expected an array of strings",
            id="a location without ranges key",
        ),
        pytest.param(
            "named_locations.0.ranges",
            [7],
            "named_locations[0].ranges[0]: expected a string",
            id="a range that is not a string",
        ),
        pytest.param(
            "named_locations.0.name",
            "all-trusted",
            "named_locations[0].name: 'all-trusted' is reserved (it means something in policies)",
            id="a location cannot be called all-trusted",
        ),
        pytest.param(
            "named_locations.0.name",
            "lan/wifi",
            "named_locations[0].name: a location name cannot contain '/' "
            "(policies read that as a CIDR)",
            id="a location name cannot look like a cidr",
        ),
        pytest.param(
            "named_locations.0.trusted",
            "yes",
            "named_locations[0].trusted: expected a boolean (true or false), got a string",
            id="trusted must be a boolean",
        ),
        pytest.param(
            "named_locations.0.colour",
            "blue",
            "named_locations[0].colour: unknown key",
            id="an unknown key in a location",
        ),
        pytest.param(
            f"{CA0}.conditions.locations.include",
            ["office"],
            "conditional_access[0].conditions.locations.include[0]: "
            "unknown named location 'office'",
            id="a user-action policy naming an unknown location",
        ),
        pytest.param(
            f"{CA0}.conditions.locations.exclude",
            ["any"],
            "conditional_access[0].conditions.locations.exclude[0]: 'any' cannot be excluded "
            '(use state = "off")',
            id="any cannot be excluded",
        ),
        pytest.param(
            f"{CA0}.conditions.locations.include",
            ["any", "loopback"],
            "conditional_access[0].conditions.locations.include: 'any' cannot be combined with "
            "other entries",
            id="any cannot be combined",
        ),
        pytest.param(
            f"{CA0}.conditions.locations.include",
            [],
            "conditional_access[0].conditions.locations.include: expected at least one entry "
            "('any', 'all-trusted' or a location)",
            id="an empty include list",
        ),
        pytest.param(
            f"{CA0}.conditions.locations.where",
            "here",
            "conditional_access[0].conditions.locations.where: unknown key",
            id="an unknown key in locations",
        ),
        pytest.param(
            f"{CA0}.state",
            "enabled",
            "conditional_access[0].state: "
            "expected one of 'on', 'off', 'report-only', got 'enabled'",
            id="an unknown state",
        ),
        pytest.param(
            f"{CA0}.state",
            None,
            "conditional_access[0].state: required: expected one of 'on', 'off', 'report-only'",
            id="a policy without state",
        ),
        pytest.param(
            f"{CA0}.name",
            "second",
            "conditional_access[1].name: "
            "duplicate policy name 'second' (also conditional_access[0])",
            id="two policies with one name",
        ),
        pytest.param(
            f"{CA0}.assignments",
            {"exclude_groups": ["x"]},
            "conditional_access[0].assignments: expected include_users or include_groups "
            "(the policy includes nobody)",
            id="a policy that includes nobody",
        ),
        pytest.param(
            f"{CA0}.assignments.include_users",
            ["all", "alice"],
            "conditional_access[0].assignments.include_users: "
            "'all' cannot be combined with user ids",
            id="all users plus a user",
        ),
        pytest.param(
            f"{CA0}.assignments",
            None,
            "conditional_access[0].assignments: required: expected a table",
            id="a policy without assignments",
        ),
        pytest.param(
            f"{CA0}.target.applications",
            ["all"],
            "conditional_access[0].target: expected either user_action "
            "('register-security-information') or applications",
            id="a target with both a user action and applications",
        ),
        pytest.param(
            f"{CA0}.target.user_action",
            None,
            "conditional_access[0].target: expected either user_action "
            "('register-security-information') or applications",
            id="a target with neither",
        ),
        pytest.param(
            f"{CA0}.target.user_action",
            "reset-password",
            "conditional_access[0].target.user_action: expected one of "
            "'register-security-information', got 'reset-password'",
            id="an unknown user action",
        ),
        pytest.param(
            "conditional_access.1.target.applications",
            [],
            "conditional_access[1].target.applications: expected at least one client id, or 'all'",
            id="an empty application list",
        ),
        pytest.param(
            f"{CA0}.target.exclude_applications",
            ["portal"],
            "conditional_access[0].target.exclude_applications: only allowed with applications",
            id="excluded applications on a user-action policy",
        ),
        pytest.param(
            f"{CA0}.conditions.client_app_types",
            ["exchange"],
            "conditional_access[0].conditions.client_app_types[0]: expected one of 'browser', "
            "'mobile-desktop', 'other', got 'exchange'",
            id="an unknown client app type",
        ),
        pytest.param(
            f"{CA0}.conditions.sign_in_risk",
            [],
            "conditional_access[0].conditions.sign_in_risk: expected at least one entry "
            "(leave the key out to match all)",
            id="an empty risk list",
        ),
        pytest.param(
            f"{CA0}.grant.require",
            ["mfa"],
            "conditional_access[0].grant: block = true cannot be combined with require",
            id="block and require together",
        ),
        pytest.param(
            f"{CA0}.grant",
            {"block": False},
            "conditional_access[0].grant: expected block = true or require = [...] with at least "
            "one control",
            id="a grant that neither blocks nor requires",
        ),
        pytest.param(
            "conditional_access.1.grant.require",
            ["sms"],
            "conditional_access[1].grant.require[0]: expected one of 'mfa', "
            "'phishing-resistant-mfa', got 'sms'",
            id="an unknown control",
        ),
        pytest.param(
            f"{CA0}.grant.operator",
            "or",
            "conditional_access[0].grant.operator: only allowed with require",
            id="an operator on a block grant",
        ),
        pytest.param(
            "conditional_access.1.grant.operator",
            "xor",
            "conditional_access[1].grant.operator: expected one of 'and', 'or', got 'xor'",
            id="an unknown operator",
        ),
        pytest.param(
            "network",
            {"trusted_proxies": ["proxy.internal"]},
            "network.trusted_proxies[0]: 'proxy.internal' is not a network",
            id="a trusted proxy that is not an address",
        ),
        pytest.param(
            "network",
            {"forwarded_header": "x-real-ip"},
            "network.forwarded_header: expected one of 'x-forwarded-for', 'forwarded', "
            "got 'x-real-ip'",
            id="an unknown forwarded header",
        ),
        pytest.param(
            "network",
            {"trusted_proxy": ["10.0.0.1"]},
            "network.trusted_proxy: unknown key",
            id="a misspelt network key",
        ),
        pytest.param(
            "named_locations",
            {"name": "x"},
            "named_locations: expected an array of tables, got a table",
            id="named_locations written as a single table",
        ),
    ],
)
def test_config_errors_name_their_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_conditional_access(with_change(path, value))
    assert message in [str(p) for p in caught.value.problems]


def test_every_error_is_reported_at_once() -> None:
    data = with_change("named_locations.0.ranges", ["10.0.0.0/33"])
    data["conditional_access"][1]["state"] = "maybe"
    with pytest.raises(ConfigError) as caught:
        parse_conditional_access(data)
    assert [p.path for p in caught.value.problems] == [
        "named_locations[0].ranges[0]",
        "conditional_access[1].state",
    ]

"""Config warnings: valid configs that probably do not do what was meant."""

from __future__ import annotations

from typing import Any

import pytest

from oidc_combinedreg.conditional_access import lint, parse_conditional_access


def config(policy: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    base = {
        "named_locations": [
            {"name": "loopback", "ranges": ["127.0.0.0/8", "::1/128"], "trusted": True},
            {"name": "partner", "ranges": ["198.51.100.0/24"]},
        ],
        "conditional_access": [] if policy is None else [policy],
    }
    return base | extra


def block_policy(**kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "name": kw.get("name", "Block registration"),
        "state": kw.get("state", "on"),
        "assignments": kw.get("assignments", {"include_users": ["all"]}),
        "target": kw.get("target", {"user_action": "register-security-information"}),
        "grant": kw.get("grant", {"block": True}),
    }
    if "locations" in kw:
        p["conditions"] = {"locations": kw["locations"]}
    return p


LOCKOUT = (
    "conditional_access[0]: policy 'Block registration' blocks every user, including all admins "
    "(lock-out): exclude a break-glass group or account"
)


@pytest.mark.parametrize(
    ("data", "warnings"),
    [
        pytest.param(config(), [], id="locations without policies -> no warning"),
        pytest.param(
            config(block_policy(locations={"exclude": ["partner"]})),
            [
                "conditional_access[0].conditions.locations.exclude[0]: excludes 'partner', "
                "which is not a trusted location: anyone there is exempt"
            ],
            id="excluding an untrusted named location",
        ),
        pytest.param(
            config(block_policy(locations={"exclude": ["loopback", "192.0.2.0/24"]})),
            [
                "conditional_access[0].conditions.locations.exclude[1]: excludes '192.0.2.0/24', "
                "which is not a trusted location: anyone there is exempt"
            ],
            id="excluding an inline cidr, after a trusted one",
        ),
        pytest.param(
            config(
                named_locations=[
                    {
                        "name": "wide",
                        "ranges": ["10.0.0.0/8", "0.0.0.0/7", "2000::/15"],
                        "trusted": True,
                    },
                ]
            ),
            [
                "named_locations[0].ranges[1]: trusted range '0.0.0.0/7' covers more than a /8",
                "named_locations[0].ranges[2]: trusted range '2000::/15' covers more than a /16",
            ],
            id="a trusted range wider than /8 or /16 (but /8 itself is fine)",
        ),
        pytest.param(
            config(named_locations=[{"name": "world", "ranges": ["0.0.0.0/0"]}]),
            [],
            id="an untrusted wide range is fine",
        ),
        pytest.param(
            config(named_locations=[{"name": "nothing", "ranges": [], "trusted": True}]),
            ["named_locations[0].ranges: location 'nothing' has no ranges: it matches nothing"],
            id="an empty allowlist",
        ),
        pytest.param(config(block_policy()), [LOCKOUT], id="block all users on the user action"),
        pytest.param(
            config(block_policy(target={"applications": ["all"]})),
            [LOCKOUT],
            id="block all users on all apps",
        ),
        pytest.param(
            config(block_policy(state="report-only")), [], id="a report-only block locks no one out"
        ),
        pytest.param(
            config(block_policy(target={"applications": ["portal"]})),
            [],
            id="blocking one app is not a lock-out",
        ),
        pytest.param(
            config(block_policy(assignments={"include_users": ["all"], "exclude_users": ["root"]})),
            [],
            id="an excluded break-glass account prevents the lock-out warning",
        ),
        pytest.param(
            config(block_policy(locations={"exclude": ["all-trusted"]})),
            [],
            id="excluding trusted locations is not a total lock-out",
        ),
        pytest.param(
            config(
                block_policy(
                    assignments={"include_users": ["all"], "exclude_groups": ["bg"]},
                    grant={"require": ["mfa"]},
                )
            ),
            [],
            id="a grant policy never locks out",
        ),
        pytest.param(
            config(network={"trusted_proxies": ["10.0.0.1", "0.0.0.0/0"]}),
            [
                "network.trusted_proxies[1]: '0.0.0.0/0' is very wide: any client in it can "
                "choose its own address"
            ],
            id="a trusted proxy range that trusts everyone",
        ),
    ],
)
def test_lint(data: dict[str, Any], warnings: list[str]) -> None:
    problems = lint(parse_conditional_access(data))
    assert [str(p) for p in problems] == warnings
    assert all(p.severity == "warning" for p in problems)

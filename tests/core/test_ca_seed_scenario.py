"""The seed scenario, exactly as written in the issue and in docs/conditional-access.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from oidc_combinedreg.conditional_access import (
    REGISTER_SECURITY_INFO,
    Engine,
    Outcome,
    SignInContext,
    Target,
    lint,
    parse_conditional_access,
)

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

DOCS = Path(__file__).parents[2] / "docs" / "conditional-access.md"
SEED = parse_conditional_access(tomllib.loads(SEED_TOML))
POLICY = "Combined Security Info Registration on Trusted Networks"


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_docs_show_the_seed_scenario_exactly() -> None:
    assert tomllib.loads(SEED_TOML) in [tomllib.loads(b) for b in toml_blocks()]


def test_every_toml_example_in_the_docs_is_a_valid_config() -> None:
    blocks = toml_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        parse_conditional_access(tomllib.loads(block))


def test_the_seed_scenario_has_no_warnings() -> None:
    assert lint(SEED) == []


@pytest.mark.parametrize(
    ("user", "groups", "ip", "target", "satisfied", "outcome"),
    [
        pytest.param(
            "alice",
            {"staff"},
            "203.0.113.5",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.BLOCK,
            id="untrusted ip, user action -> block",
        ),
        pytest.param(
            "alice",
            {"staff"},
            "203.0.113.5",
            REGISTER_SECURITY_INFO,
            {"mfa"},
            Outcome.BLOCK,
            id="mfa does not lift a block",
        ),
        pytest.param(
            "alice",
            {"staff"},
            "127.0.0.1",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.ALLOW,
            id="loopback ipv4, user action -> allow",
        ),
        pytest.param(
            "alice",
            set(),
            "127.255.255.255",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.ALLOW,
            id="last address of 127/8 is trusted",
        ),
        pytest.param(
            "alice",
            set(),
            "128.0.0.0",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.BLOCK,
            id="first address after 127/8 is not",
        ),
        pytest.param(
            "alice",
            set(),
            "::1",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.ALLOW,
            id="loopback ipv6 -> allow",
        ),
        pytest.param(
            "alice",
            set(),
            "::2",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.BLOCK,
            id="an ipv6 neighbour of ::1 -> block",
        ),
        pytest.param(
            "alice",
            set(),
            "::ffff:127.0.0.1",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.ALLOW,
            id="ipv4-mapped loopback is loopback",
        ),
        pytest.param(
            "bob",
            {"break-glass"},
            "203.0.113.5",
            REGISTER_SECURITY_INFO,
            set(),
            Outcome.ALLOW,
            id="break-glass member is excluded -> allow",
        ),
        pytest.param(
            "alice",
            {"staff"},
            "203.0.113.5",
            Target.application("portal"),
            set(),
            Outcome.ALLOW,
            id="a user-action policy never applies to an application",
        ),
    ],
)
def test_seed_scenario(
    user: str, groups: set[str], ip: str, target: Target, satisfied: set[str], outcome: Outcome
) -> None:
    ctx = SignInContext(
        user_id=user,
        groups=frozenset(groups),
        client_ip=ip,
        target=target,
        satisfied=frozenset(satisfied),  # type: ignore[arg-type]
    )
    decision = Engine(SEED).evaluate(ctx)
    assert decision.outcome is outcome
    assert decision.blocking_policies == ((POLICY,) if outcome is Outcome.BLOCK else ())

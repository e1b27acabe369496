"""What If output: every policy named, with why it applied or not."""

from __future__ import annotations

import json

import pytest

from oidc_combinedreg.conditional_access import (
    Outcome,
    parse_conditional_access,
    render_json,
    render_text,
    what_if,
)

CONFIG = parse_conditional_access(
    {
        "named_locations": [
            {"name": "loopback", "ranges": ["127.0.0.0/8", "::1/128"], "trusted": True}
        ],
        "conditional_access": [
            {
                "name": "Registration on trusted networks",
                "state": "on",
                "assignments": {"include_users": ["all"], "exclude_groups": ["break-glass"]},
                "target": {"user_action": "register-security-information"},
                "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
                "grant": {"block": True},
            },
            {
                "name": "MFA for the portal",
                "state": "on",
                "assignments": {"include_groups": ["staff"]},
                "target": {"applications": ["portal"]},
                "grant": {"require": ["mfa"]},
            },
            {
                "name": "Trial: phishing-resistant everywhere",
                "state": "report-only",
                "assignments": {"include_users": ["all"]},
                "target": {"user_action": "register-security-information"},
                "grant": {"require": ["phishing-resistant-mfa"]},
            },
            {
                "name": "Old rule",
                "state": "off",
                "assignments": {"include_users": ["all"]},
                "target": {"applications": ["all"]},
                "grant": {"block": True},
            },
        ],
    }
)


def fixed() -> str:
    return "0123456789abcdef0123456789abcdef"


def test_text_names_every_policy_and_why() -> None:
    decision = what_if(
        CONFIG,
        "alice",
        ["staff"],
        "203.0.113.5",
        action="register-security-information",
        new_id=fixed,
    )
    text = render_text(decision)
    assert decision.outcome is Outcome.BLOCK
    assert "correlation id 0123456789abcdef0123456789abcdef" in text
    assert "Result: BLOCK - blocked by 'Registration on trusted networks'" in text
    assert "[on] Registration on trusted networks: block -> blocks" in text
    assert (
        "[report-only] Trial: phishing-resistant everywhere: require phishing-resistant-mfa "
        "-> would require controls not met yet (report-only: not enforced)" in text
    )
    assert (
        "[on] MFA for the portal: the policy targets applications 'portal', not user-action "
        "register-security-information" in text
    )
    assert "[off] Old rule: the policy is off" in text


@pytest.mark.parametrize(
    ("user", "groups", "ip", "app", "line"),
    [
        pytest.param(
            "bob",
            ["break-glass"],
            "203.0.113.5",
            None,
            "Registration on trusted networks: user is excluded ('break-glass')",
            id="excluded by group",
        ),
        pytest.param(
            "alice",
            [],
            "127.0.0.1",
            None,
            "Registration on trusted networks: client IP 127.0.0.1 is in 'loopback', "
            "excluded by (all-trusted)",
            id="excluded by location",
        ),
        pytest.param(
            "alice",
            ["sales"],
            "127.0.0.1",
            "portal",
            "MFA for the portal: user 'alice' is not included (include_users none, "
            "include_groups 'staff')",
            id="not included",
        ),
        pytest.param(
            "alice",
            ["staff"],
            "127.0.0.1",
            "portal",
            "MFA for the portal: require mfa -> requirements not met yet",
            id="applied grant, mfa missing",
        ),
    ],
)
def test_text_explains_each_reason(
    user: str, groups: list[str], ip: str, app: str | None, line: str
) -> None:
    target = {"app": app} if app else {"action": "register-security-information"}
    assert line in render_text(what_if(CONFIG, user, groups, ip, **target))


def test_text_for_an_unusable_ip_says_nothing_was_evaluated() -> None:
    text = render_text(what_if(CONFIG, "alice", [], "bogus", app="portal"))
    assert "Result: BLOCK - client IP 'bogus' is not an address" in text
    assert "No policy was evaluated" in text


def test_json_has_every_policy_and_the_missing_controls() -> None:
    decision = what_if(CONFIG, "alice", ["staff"], "::1", app="portal", new_id=fixed)
    data = json.loads(render_json(decision))
    assert data["outcome"] == "require-controls"
    assert data["missing"] == [["mfa"]]
    assert data["correlation_id"] == fixed()
    assert data["locations"] == ["loopback"] and data["in_trusted_location"]
    assert [(p["name"], p["applied"], p["reason"]) for p in data["policies"]] == [
        ("Registration on trusted networks", False, "target-not-matched"),
        ("MFA for the portal", True, "applied"),
        ("Trial: phishing-resistant everywhere", False, "target-not-matched"),
        ("Old rule", False, "policy-off"),
    ]


def test_what_if_needs_exactly_one_target() -> None:
    with pytest.raises(ValueError):
        what_if(CONFIG, "alice", [], "127.0.0.1")
    with pytest.raises(ValueError):
        what_if(CONFIG, "alice", [], "127.0.0.1", action="register-security-information", app="x")

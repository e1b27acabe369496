"""Evaluation semantics (as Entra defines them): who a policy applies to, how results combine."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from oidc_combinedreg.conditional_access import (
    REGISTER_SECURITY_INFO,
    Control,
    Decision,
    Engine,
    Outcome,
    PolicyState,
    Reason,
    Requirement,
    SignInContext,
    Target,
    parse_conditional_access,
)

LOCATIONS = [
    {"name": "loopback", "ranges": ["127.0.0.0/8", "::1/128"], "trusted": True},
    {"name": "office", "ranges": ["192.0.2.0/24", "2001:db8:1::/48"], "trusted": True},
    {"name": "partner", "ranges": ["198.51.100.0/24"]},
]
PORTAL = Target.application("portal")
UNTRUSTED = "203.0.113.5"


def policy(name: str = "p", **kw: Any) -> dict[str, Any]:
    """A policy table; by default: on, all users, the user action, block."""
    target = {"user_action": "register-security-information"}
    if "apps" in kw:
        target = {"applications": kw["apps"]}
        if "exclude_apps" in kw:
            target["exclude_applications"] = kw["exclude_apps"]
    assignments: dict[str, Any] = {"include_users": kw.get("users", ["all"])}
    for key in ("include_groups", "exclude_users", "exclude_groups"):
        if key in kw:
            assignments[key] = kw[key]
    if "include_groups" in kw and "users" not in kw:
        del assignments["include_users"]
    conditions: dict[str, Any] = {}
    if "locations" in kw:
        conditions["locations"] = kw["locations"]
    if "client_apps" in kw:
        conditions["client_app_types"] = kw["client_apps"]
    if "risk" in kw:
        conditions["sign_in_risk"] = kw["risk"]
    grant: dict[str, Any] = {"block": True}
    if "require" in kw:
        grant = {"require": kw["require"], "operator": kw.get("operator", "and")}
    return {
        "name": name,
        "state": kw.get("state", "on"),
        "assignments": assignments,
        "target": target,
        "conditions": conditions,
        "grant": grant,
    }


def decide(policies: list[dict[str, Any]], **kw: Any) -> Decision:
    config = parse_conditional_access(
        {"named_locations": LOCATIONS, "conditional_access": policies}
    )
    ctx = SignInContext(
        user_id=kw.get("user", "alice"),
        groups=frozenset(kw.get("groups", ())),
        client_ip=kw.get("ip", UNTRUSTED),
        target=kw.get("target", REGISTER_SECURITY_INFO),
        client_app=kw.get("client_app", "browser"),
        sign_in_risk=kw.get("risk", "none"),
        satisfied=frozenset(kw.get("satisfied", ())),
        client_ip_malformed=kw.get("malformed", False),
    )
    return Engine(config, new_id=lambda: "fixed-id").evaluate(ctx)


@pytest.mark.parametrize(
    ("p", "ctx", "reason"),
    [
        pytest.param(policy(), {}, Reason.APPLIED, id="all users, user action -> applies"),
        pytest.param(policy(state="off"), {}, Reason.POLICY_OFF, id="an off policy never applies"),
        pytest.param(
            policy(state="report-only"), {}, Reason.APPLIED, id="a report-only policy is evaluated"
        ),
        pytest.param(
            policy(include_groups=["staff"]),
            {"groups": {"staff"}},
            Reason.APPLIED,
            id="member of an included group -> applies",
        ),
        pytest.param(
            policy(include_groups=["staff"]),
            {"groups": {"sales"}},
            Reason.USER_NOT_INCLUDED,
            id="not in an included group -> does not apply",
        ),
        pytest.param(
            policy(users=["alice"]),
            {"user": "alice"},
            Reason.APPLIED,
            id="a listed user -> applies",
        ),
        pytest.param(
            policy(users=["alice"]),
            {"user": "bob"},
            Reason.USER_NOT_INCLUDED,
            id="an unlisted user -> does not apply",
        ),
        pytest.param(
            policy(include_groups=["staff"], exclude_users=["alice"]),
            {"groups": {"staff"}},
            Reason.USER_EXCLUDED,
            id="exclusion of the user wins over group inclusion",
        ),
        pytest.param(
            policy(users=["alice"], exclude_groups=["break-glass"]),
            {"groups": {"break-glass"}},
            Reason.USER_EXCLUDED,
            id="exclusion of a group wins over user inclusion",
        ),
        pytest.param(
            policy(),
            {"target": PORTAL},
            Reason.TARGET_NOT_MATCHED,
            id="a user-action policy does not apply to an application",
        ),
        pytest.param(
            policy(apps=["all"]),
            {},
            Reason.TARGET_NOT_MATCHED,
            id="an all-applications policy does not apply to the user action",
        ),
        pytest.param(
            policy(apps=["all"]),
            {"target": PORTAL},
            Reason.APPLIED,
            id="an all-applications policy applies to any application",
        ),
        pytest.param(
            policy(apps=["wiki"]),
            {"target": PORTAL},
            Reason.TARGET_NOT_MATCHED,
            id="an unlisted application -> does not apply",
        ),
        pytest.param(
            policy(apps=["all"], exclude_apps=["portal"]),
            {"target": PORTAL},
            Reason.APPLICATION_EXCLUDED,
            id="an excluded application -> does not apply",
        ),
        pytest.param(
            policy(locations={"include": ["any"], "exclude": ["all-trusted"]}),
            {"ip": "192.0.2.10"},
            Reason.LOCATION_EXCLUDED,
            id="from a trusted location, all-trusted excluded -> does not apply",
        ),
        pytest.param(
            policy(locations={"include": ["any"], "exclude": ["all-trusted"]}),
            {"ip": "198.51.100.1"},
            Reason.APPLIED,
            id="from an untrusted named location -> applies",
        ),
        pytest.param(
            policy(locations={"include": ["partner"]}),
            {},
            Reason.LOCATION_NOT_INCLUDED,
            id="outside an included location -> does not apply",
        ),
        pytest.param(
            policy(locations={"include": ["all-trusted"]}),
            {"ip": "2001:db8:1::9"},
            Reason.APPLIED,
            id="ipv6 in a trusted location with all-trusted included",
        ),
        pytest.param(
            policy(locations={"include": ["any"], "exclude": ["office"]}),
            {"ip": "192.0.2.255"},
            Reason.LOCATION_EXCLUDED,
            id="last address of an excluded named location -> does not apply",
        ),
        pytest.param(
            policy(locations={"include": ["203.0.113.0/24"]}),
            {},
            Reason.APPLIED,
            id="an inline cidr in include matches",
        ),
        pytest.param(
            policy(client_apps=["other"]),
            {"client_app": "browser"},
            Reason.CLIENT_APP_NOT_MATCHED,
            id="browser sign-in, policy for other clients",
        ),
        pytest.param(
            policy(client_apps=["other", "browser"]),
            {"client_app": "browser"},
            Reason.APPLIED,
            id="a selected client app type -> applies",
        ),
        pytest.param(
            policy(risk=["high"]),
            {"risk": "none"},
            Reason.SIGN_IN_RISK_NOT_MATCHED,
            id="no risk, policy for high risk -> does not apply",
        ),
        pytest.param(
            policy(risk=["medium", "high"]),
            {"risk": "high"},
            Reason.APPLIED,
            id="high risk, policy for medium and high -> applies",
        ),
        pytest.param(
            policy(exclude_users=["alice"], locations={"include": ["partner"]}),
            {},
            Reason.USER_EXCLUDED,
            id="users are reported before locations",
        ),
    ],
)
def test_when_a_policy_applies(p: dict[str, Any], ctx: dict[str, Any], reason: Reason) -> None:
    (result,) = decide([p], **ctx).policies
    assert result.reason is reason
    assert result.applied is (reason is Reason.APPLIED)


MFA = Requirement(one_of=frozenset({Control.MFA}))
PRMFA = Requirement(one_of=frozenset({Control.PHISHING_RESISTANT_MFA}))
EITHER = Requirement(one_of=frozenset({Control.MFA, Control.PHISHING_RESISTANT_MFA}))


@pytest.mark.parametrize(
    ("policies", "ctx", "outcome", "missing"),
    [
        pytest.param([], {}, Outcome.ALLOW, (), id="no policies -> allow"),
        pytest.param([policy()], {}, Outcome.BLOCK, (), id="an applying block policy -> block"),
        pytest.param(
            [policy(state="report-only")],
            {},
            Outcome.ALLOW,
            (),
            id="report-only block is never enforced",
        ),
        pytest.param(
            [policy(state="report-only", require=["mfa"])],
            {},
            Outcome.ALLOW,
            (),
            id="report-only grant is never enforced",
        ),
        pytest.param([policy(state="off")], {}, Outcome.ALLOW, (), id="off block -> allow"),
        pytest.param(
            [policy(require=["mfa"])],
            {},
            Outcome.REQUIRE_CONTROLS,
            (MFA,),
            id="require mfa without mfa -> mfa missing",
        ),
        pytest.param(
            [policy(require=["mfa"])],
            {"satisfied": {"mfa"}},
            Outcome.ALLOW,
            (),
            id="require mfa with mfa -> allow",
        ),
        pytest.param(
            [policy("a", require=["mfa"]), policy("b")],
            {"satisfied": {"mfa"}},
            Outcome.BLOCK,
            (),
            id="block wins over a met grant",
        ),
        pytest.param(
            [policy("a", require=["mfa"]), policy("b", state="report-only")],
            {"satisfied": {"mfa"}},
            Outcome.ALLOW,
            (),
            id="a report-only block does not beat a met grant",
        ),
        pytest.param(
            [policy(require=["mfa", "phishing-resistant-mfa"])],
            {"satisfied": {"mfa"}},
            Outcome.REQUIRE_CONTROLS,
            (PRMFA,),
            id="and-grant with only mfa -> phishing-resistant missing",
        ),
        pytest.param(
            [policy(require=["mfa", "phishing-resistant-mfa"], operator="or")],
            {"satisfied": {"mfa"}},
            Outcome.ALLOW,
            (),
            id="or-grant with mfa -> allow",
        ),
        pytest.param(
            [policy(require=["mfa", "phishing-resistant-mfa"], operator="or")],
            {},
            Outcome.REQUIRE_CONTROLS,
            (MFA,),
            id="or-grant with nothing -> mfa (phishing-resistant also counts) missing",
        ),
        pytest.param(
            [policy("a", require=["mfa"]), policy("b", require=["phishing-resistant-mfa"])],
            {},
            Outcome.REQUIRE_CONTROLS,
            (PRMFA,),
            id="requirements of all grant policies combine",
        ),
        pytest.param(
            [policy("a", require=["mfa"]), policy("b", require=["phishing-resistant-mfa"])],
            {"satisfied": {"phishing-resistant-mfa"}},
            Outcome.ALLOW,
            (),
            id="phishing-resistant mfa also meets plain mfa",
        ),
        pytest.param(
            [policy(require=["mfa"], apps=["portal"])],
            {"target": PORTAL},
            Outcome.REQUIRE_CONTROLS,
            (MFA,),
            id="app policy on its app -> mfa missing",
        ),
        pytest.param(
            [policy(require=["mfa"], apps=["portal"])],
            {},
            Outcome.ALLOW,
            (),
            id="app policy on the user action -> allow",
        ),
        pytest.param(
            [policy(locations={"include": ["any"], "exclude": ["all-trusted"]})],
            {"ip": "::ffff:127.0.0.1"},
            Outcome.ALLOW,
            (),
            id="ipv4-mapped trusted address -> allow",
        ),
    ],
)
def test_outcomes(
    policies: list[dict[str, Any]],
    ctx: dict[str, Any],
    outcome: Outcome,
    missing: tuple[Requirement, ...],
) -> None:
    decision = decide(policies, **ctx)
    assert decision.outcome is outcome
    assert decision.missing == missing


@pytest.mark.parametrize(
    ("ctx", "reason"),
    [
        pytest.param(
            {"ip": "not-an-ip"},
            "client IP 'not-an-ip' is not an address",
            id="unparsable ip -> block",
        ),
        pytest.param({"ip": None}, "client IP unknown", id="no ip -> block"),
        pytest.param(
            {"ip": "127.0.0.1", "malformed": True},
            "client IP unknown: the forwarded header was malformed",
            id="malformed forwarded header -> block even from a trusted address",
        ),
    ],
)
def test_unusable_client_ip_fails_closed(ctx: dict[str, Any], reason: str) -> None:
    decision = decide([policy(locations={"include": ["any"], "exclude": ["all-trusted"]})], **ctx)
    assert decision.outcome is Outcome.BLOCK
    assert decision.reason == reason
    assert decision.client_ip is None


def test_report_only_results_say_what_would_have_happened() -> None:
    decision = decide([policy("enforced", require=["mfa"]), policy("trial", state="report-only")])
    enforced, trial = decision.policies
    assert (enforced.outcome, enforced.enforced) == (Outcome.REQUIRE_CONTROLS, True)
    assert (trial.outcome, trial.report_only, trial.enforced) == (Outcome.BLOCK, True, False)
    assert trial.state is PolicyState.REPORT_ONLY
    assert decision.report_only_results == (trial,)
    assert decision.outcome is Outcome.REQUIRE_CONTROLS


def test_a_decision_lists_every_policy_in_order_with_its_requirements() -> None:
    decision = decide(
        [
            policy("one", require=["mfa", "phishing-resistant-mfa"], operator="or"),
            policy("two", state="off"),
        ]
    )
    assert [r.name for r in decision.policies] == ["one", "two"]
    assert decision.policies[0].requires == (MFA,)
    assert decision.requirements == (MFA,)
    assert decision.correlation_id == "fixed-id"
    assert decision.locations == ()
    assert decision.client_ip == ipaddress.ip_address(UNTRUSTED)


def test_locations_and_trust_are_reported() -> None:
    decision = decide([], ip="127.0.0.1")
    assert decision.locations == ("loopback",)
    assert decision.in_trusted_location


def test_each_evaluation_gets_a_fresh_correlation_id() -> None:
    config = parse_conditional_access({})
    engine = Engine(config)
    ctx = SignInContext(user_id="a", client_ip="127.0.0.1", target=REGISTER_SECURITY_INFO)
    first, second = engine.evaluate(ctx).correlation_id, engine.evaluate(ctx).correlation_id
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_or_requirement_prints_both_choices() -> None:
    assert str(EITHER) == "one of mfa / phishing-resistant-mfa"
    assert MFA.met_by(frozenset({Control.MFA}))
    assert not PRMFA.met_by(frozenset({Control.MFA}))


def test_unknown_satisfied_control_is_refused() -> None:
    with pytest.raises(ValueError):
        SignInContext(
            user_id="a",
            client_ip=None,
            target=REGISTER_SECURITY_INFO,
            satisfied=frozenset({"sms"}),  # type: ignore[arg-type]
        )

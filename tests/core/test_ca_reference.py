"""The engine agrees with a plain, slow reading of the rules on random configs and sign-ins."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_combinedreg.conditional_access import (
    Control,
    Engine,
    Outcome,
    SignInContext,
    Target,
    UserAction,
    parse_conditional_access,
)

LOCATIONS = [
    {"name": "home", "ranges": ["127.0.0.0/8", "::1/128"], "trusted": True},
    {"name": "office", "ranges": ["192.0.2.0/24", "2001:db8::/32"], "trusted": True},
    {"name": "partner", "ranges": ["192.0.2.128/25", "198.51.100.0/24"], "trusted": False},
]
IPS = ["127.0.0.1", "::1", "192.0.2.1", "192.0.2.200", "198.51.100.9", "203.0.113.1", "2001:db8::9"]
USERS, GROUPS, APPS = ["u1", "u2"], ["g1", "g2", "g3"], ["a1", "a2"]
TARGETS = [Target.user_action(UserAction.REGISTER_SECURITY_INFO)] + [
    Target.application(a) for a in APPS
]
LOC_WORDS = ["all-trusted", "home", "office", "partner"]


def subset(items: list[str], min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), unique=True, min_size=min_size, max_size=len(items))


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    include_users = draw(st.one_of(st.just(["all"]), subset(USERS)))
    include_groups = draw(subset(GROUPS))
    if not include_users and not include_groups:
        include_users = ["all"]
    target: dict[str, Any] = draw(
        st.sampled_from(
            [{"user_action": "register-security-information"}, {"applications": ["all"]}]
            + [{"applications": [a]} for a in APPS]
            + [{"applications": ["all"], "exclude_applications": ["a1"]}]
        )
    )
    conditions: dict[str, Any] = {}
    if draw(st.booleans()):
        include = draw(st.one_of(st.just(["any"]), subset(LOC_WORDS, min_size=1)))
        conditions["locations"] = {"include": include, "exclude": draw(subset(LOC_WORDS))}
    if draw(st.booleans()):
        conditions["client_app_types"] = draw(subset(["browser", "other"], min_size=1))
    grant = draw(
        st.one_of(
            st.just({"block": True}),
            st.builds(
                lambda c, o: {"require": c, "operator": o},
                subset(["mfa", "phishing-resistant-mfa"], min_size=1),
                st.sampled_from(["and", "or"]),
            ),
        )
    )
    return {
        "name": f"p{draw(st.integers(0, 10**9))}",
        "state": draw(st.sampled_from(["on", "off", "report-only"])),
        "assignments": {
            "include_users": include_users,
            "include_groups": include_groups,
            "exclude_users": draw(subset(USERS)),
            "exclude_groups": draw(subset(GROUPS)),
        },
        "target": target,
        "conditions": conditions,
        "grant": grant,
    }


def in_location(ip: str, word: str) -> bool:
    address = ipaddress.ip_address(ip)
    locs = [
        loc
        for loc in LOCATIONS
        if word == loc["name"] or (word == "all-trusted" and loc["trusted"])
    ]
    return any(
        address.version == n.version and address in n
        for loc in locs
        for n in map(ipaddress.ip_network, loc["ranges"])
    )


def applies(
    p: dict[str, Any], user: str, groups: set[str], ip: str, target: Target, app: str
) -> bool:
    a, t, c = p["assignments"], p["target"], p["conditions"]
    included = (
        "all" in a["include_users"]
        or user in a["include_users"]
        or groups & set(a["include_groups"])
    )
    excluded = user in a["exclude_users"] or groups & set(a["exclude_groups"])
    if target.kind == "user-action":
        target_ok = "user_action" in t
    else:
        apps = t.get("applications", [])
        target_ok = ("all" in apps or target.value in apps) and target.value not in t.get(
            "exclude_applications", []
        )
    loc_ok = True
    if "locations" in c:
        inc, exc = c["locations"]["include"], c["locations"]["exclude"]
        loc_ok = ("any" in inc or any(in_location(ip, w) for w in inc)) and not any(
            in_location(ip, w) for w in exc
        )
    app_ok = app in c.get("client_app_types", [app])
    return (
        p["state"] != "off" and bool(included) and not excluded and target_ok and loc_ok and app_ok
    )


def met(grant: dict[str, Any], satisfied: set[str]) -> bool:
    have = satisfied | ({"mfa"} if "phishing-resistant-mfa" in satisfied else set())
    hits = [c in have for c in grant["require"]]
    return all(hits) if grant["operator"] == "and" else any(hits)


@settings(max_examples=300, deadline=None)
@given(
    ps=st.lists(policies(), max_size=5, unique_by=lambda p: p["name"]),
    user=st.sampled_from(USERS),
    groups=subset(GROUPS),
    ip=st.sampled_from(IPS),
    target=st.sampled_from(TARGETS),
    app=st.sampled_from(["browser", "other"]),
    satisfied=subset(["mfa", "phishing-resistant-mfa"]),
)
def test_engine_agrees_with_the_rules_read_plainly(
    ps: list[dict[str, Any]],
    user: str,
    groups: list[str],
    ip: str,
    target: Target,
    app: str,
    satisfied: list[str],
) -> None:
    config = parse_conditional_access({"named_locations": LOCATIONS, "conditional_access": ps})
    ctx = SignInContext(
        user_id=user,
        groups=frozenset(groups),
        client_ip=ip,
        target=target,
        client_app=app,  # type: ignore[arg-type]
        satisfied=frozenset(Control(s) for s in satisfied),
    )
    decision = Engine(config).evaluate(ctx)
    applying = [p for p in ps if applies(p, user, set(groups), ip, target, app)]
    assert [r.applied for r in decision.policies] == [p in applying for p in ps]
    enforced = [p for p in applying if p["state"] == "on"]
    if any(p["grant"].get("block") for p in enforced):
        expected = Outcome.BLOCK
    elif all(met(p["grant"], set(satisfied)) for p in enforced):
        expected = Outcome.ALLOW
    else:
        expected = Outcome.REQUIRE_CONTROLS
    assert decision.outcome is expected

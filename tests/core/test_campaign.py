"""The registration campaign's decision (policy/campaign.py) and its place in the sign-in
pipeline (policy/signin.py next_step), table-driven; its config with path-named errors."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from oidc_combinedreg.config.reader import Reader
from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.exceptions import ConfigError
from oidc_combinedreg.methods.kinds import MethodKind as K
from oidc_combinedreg.policy.audience import Audience
from oidc_combinedreg.policy.campaign import (
    CampaignMethod,
    CampaignPolicy,
    campaign_kind,
    campaign_state,
    phone_only,
    read_campaign,
)
from oidc_combinedreg.policy.config import MfaRegistrationPolicy, PolicyConfig
from oidc_combinedreg.policy.signin import SignInFacts, StepKind, next_step
from oidc_combinedreg.store.base import MethodRecord, UserState

NOW = 1_800_000_000.0
DAY = 86400


def rec(kind: K) -> MethodRecord:
    return MethodRecord(id=f"m-{kind.value}", user_id="u", kind=kind, label="", created_at=0.0)


ON = CampaignPolicy(
    enabled=True,
    audience=Audience(exclude_groups=frozenset({"break-glass"})),
    snoozes_allowed=2,
    snooze_days=3,
)


def facts(
    kinds: tuple[K, ...] = (K.MOBILE_PHONE,),
    *,
    groups: frozenset[str] = frozenset(),
    campaign: dict[str, Any] | None = None,
    kind: K | None = K.TOTP,
    **kw: Any,
) -> SignInFacts:
    extra = {"campaign": campaign} if campaign is not None else {}
    base: dict[str, Any] = {
        "user_id": "u",
        "groups": groups,
        "per_user_mfa": PerUserMfa.DISABLED,
        "methods": [rec(k) for k in kinds],
        "state": UserState(user_id="u", extra=extra),
        "now": NOW,
        "mfa_done": True,
        "campaign_kind": kind,
    }
    base.update(kw)
    return SignInFacts(**base)


def step(
    f: SignInFacts, policy: CampaignPolicy = ON, **policies: Any
) -> tuple[str, tuple[str, ...]]:
    s = next_step(f, PolicyConfig(campaign=policy, **policies))
    return s.kind.value, s.reasons


NUDGE = ("campaign", ("campaign_nudge",))
REQUIRED = ("campaign", ("campaign_required",))
DONE = ("done", ())


@pytest.mark.parametrize(
    ("name", "f", "policy", "expected"),
    [
        ("text only: asked, snoozable", facts(), ON, NUDGE),
        ("alternate phone only", facts((K.ALTERNATE_PHONE,)), ON, NUDGE),
        ("office phone only", facts((K.OFFICE_PHONE,)), ON, NUDGE),
        ("phones and email", facts((K.MOBILE_PHONE, K.EMAIL)), ON, NUDGE),
        ("campaign off", facts(), CampaignPolicy(), DONE),
        ("has an app already", facts((K.MOBILE_PHONE, K.TOTP)), ON, DONE),
        ("has push", facts((K.MOBILE_PHONE, K.PUSH)), ON, DONE),
        ("has a security key", facts((K.MOBILE_PHONE, K.WEBAUTHN)), ON, DONE),
        ("has a hardware token", facts((K.OFFICE_PHONE, K.HARDWARE_OATH)), ON, DONE),
        (
            "no MFA method at all (the registration interrupt's business)",
            facts((K.EMAIL,)),
            ON,
            DONE,
        ),
        ("break-glass group excluded", facts(groups=frozenset({"break-glass"})), ON, DONE),
        (
            "outside the selected groups",
            facts(groups=frozenset({"staff"})),
            replace(ON, audience=Audience(all_users=False, include_groups=frozenset({"pilot"}))),
            DONE,
        ),
        (
            "inside the selected groups",
            facts(groups=frozenset({"pilot"})),
            replace(ON, audience=Audience(all_users=False, include_groups=frozenset({"pilot"}))),
            NUDGE,
        ),
        (
            "excluded user",
            facts(),
            replace(ON, audience=Audience(exclude_users=frozenset({"u"}))),
            DONE,
        ),
        ("nothing to ask for here", facts(kind=None), ON, DONE),
        ("snoozed: not asked", facts(campaign={"snoozes": 1, "until": NOW + 1}), ON, DONE),
        ("snooze over, one left", facts(campaign={"snoozes": 1, "until": NOW - 1}), ON, NUDGE),
        ("last snooze still running", facts(campaign={"snoozes": 2, "until": NOW + 1}), ON, DONE),
        (
            "snoozes used up: required",
            facts(campaign={"snoozes": 2, "until": NOW - 1}),
            ON,
            REQUIRED,
        ),
        ("no snoozes allowed: required at once", facts(), replace(ON, snoozes_allowed=0), REQUIRED),
        ("snoozed in this sign-in", facts(campaign_handled=True), ON, DONE),
        (
            "malformed state reads as none",
            facts(campaign={"snoozes": "x", "until": [1]}),
            ON,
            NUDGE,
        ),
    ],
)
def test_the_campaign_decision(
    name: str, f: SignInFacts, policy: CampaignPolicy, expected: tuple[str, tuple[str, ...]]
) -> None:
    assert step(f, policy) == expected, name


def test_the_campaign_comes_after_mfa_and_after_the_registration_interrupt() -> None:
    # MFA pending: MFA first.
    pending = facts(mfa_done=False, per_user_mfa=PerUserMfa.ENABLED)
    assert step(pending)[0] == StepKind.MFA.value
    # A registration need (an admin asked for re-registration): the wizard first, then the campaign.
    rereg = facts(state=UserState(user_id="u", reregister=True))
    assert step(rereg)[0] == StepKind.REGISTER.value
    assert step(replace(rereg, registration_handled=True)) == NUDGE
    # Conditional Access block wins.
    assert step(facts(ca_blocked=True))[0] == StepKind.BLOCKED.value
    # Enforced MFA registration with a phone only: nothing to register, the campaign asks.
    enforced = MfaRegistrationPolicy(enforced=True)
    assert step(facts(), mfa_registration=enforced) == NUDGE


@pytest.mark.parametrize(
    ("method", "offered", "expected"),
    [
        (CampaignMethod.PUSH, {K.PUSH, K.TOTP}, K.PUSH),
        (CampaignMethod.PUSH, {K.TOTP}, K.TOTP),  # push not offered (no app): TOTP
        (CampaignMethod.TOTP, {K.PUSH, K.TOTP}, K.TOTP),
        (CampaignMethod.PUSH, {K.PUSH}, K.PUSH),
        (CampaignMethod.TOTP, {K.PUSH}, None),
        (CampaignMethod.PUSH, set(), None),
    ],
)
def test_which_app_the_campaign_asks_for(
    method: CampaignMethod, offered: set[K], expected: K | None
) -> None:
    assert campaign_kind(CampaignPolicy(method=method), offered) == expected


def test_phone_only() -> None:
    assert phone_only([rec(K.MOBILE_PHONE), rec(K.OFFICE_PHONE)])
    assert not phone_only([])
    assert not phone_only([rec(K.EMAIL)])
    assert not phone_only([rec(K.MOBILE_PHONE), rec(K.TOTP)])


def test_state_round_trips_through_extra() -> None:
    state = replace(campaign_state({}), asked=2, snoozes=1, until=NOW, first_asked=NOW - DAY)
    assert campaign_state({"campaign": state.to_extra()}) == state


def read(table: dict[str, Any]) -> CampaignPolicy:
    r = Reader({"policies": {"campaign": table}})
    policy = read_campaign(r.section("policies").section("campaign"))
    r.raise_if_errors()
    return policy


def test_config_reads_every_key() -> None:
    policy = read(
        {
            "enabled": True,
            "method": "totp",
            "users": "selected",
            "include_groups": ["pilot"],
            "exclude_groups": ["break-glass"],
            "snoozes_allowed": 0,
            "snooze_days": 14,
        }
    )
    assert policy.enabled and policy.method is CampaignMethod.TOTP
    assert policy.audience.include_groups == {"pilot"}
    assert policy.audience.exclude_groups == {"break-glass"}
    assert (policy.snoozes_allowed, policy.snooze_days) == (0, 14)
    defaults = read({})
    assert not defaults.enabled and defaults.method is CampaignMethod.PUSH
    assert (defaults.snoozes_allowed, defaults.snooze_days) == (3, 1)


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({"method": "sms"}, "policies.campaign.method"),
        ({"snoozes_allowed": -1}, "policies.campaign.snoozes_allowed"),
        ({"snooze_days": 15}, "policies.campaign.snooze_days"),
        ({"enabled": "yes"}, "policies.campaign.enabled"),
        ({"snooze": 3}, "policies.campaign.snooze"),
        ({"include_groups": ["pilot"]}, "policies.campaign.users"),
    ],
)
def test_config_errors_name_the_path(table: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as exc:
        read(table)
    assert path in str(exc.value)

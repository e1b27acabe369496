"""The registration planner and the sign-in triggers, table-driven (issue 5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.methods.kinds import MethodKind as K
from oidc_combinedreg.policy.audience import Audience
from oidc_combinedreg.policy.config import (
    EnabledFor,
    MethodPolicy,
    MfaRegistrationPolicy,
    PolicyConfig,
    SsprPolicy,
)
from oidc_combinedreg.policy.planner import plan_registration
from oidc_combinedreg.policy.signin import (
    RegistrationNeed as N,
)
from oidc_combinedreg.policy.signin import (
    SignInFacts,
    StepKind,
    next_step,
    registration_needs,
    skips_left,
)
from oidc_combinedreg.store.base import MethodRecord, UserState

NOW = 1_700_000_000.0
DAY = 86400
ALL_KINDS = frozenset(K)
PHONE_ONLY = frozenset({K.MOBILE_PHONE, K.EMAIL})


def rec(kind: K, created: float = NOW - 10 * DAY) -> MethodRecord:
    return MethodRecord(id=f"m-{kind.value}", user_id="u", kind=kind, label="", created_at=created)


def policies(
    *,
    enforced: bool = True,
    sspr: str = "none",
    required: int = 1,
    sspr_methods: frozenset[K] | None = None,
    off: frozenset[K] = frozenset(),
    questions_alone: bool = False,
    preference: tuple[K, ...] = (),
    exclude_groups: frozenset[str] = frozenset(),
    **mfa: Any,
) -> PolicyConfig:
    base = PolicyConfig()
    methods = {
        k: MethodPolicy(
            enabled=(k not in off)
            and k is not K.SECURITY_QUESTIONS
            or (
                k is K.SECURITY_QUESTIONS
                and k not in off
                and sspr_methods is not None
                and k in sspr_methods
            )
        )
        for k in K
    }
    sspr_policy = replace(
        SsprPolicy(),
        enabled_for=EnabledFor(sspr),
        methods_required=required,
        allow_questions_alone=questions_alone,
        **({"methods": sspr_methods} if sspr_methods is not None else {}),
    )
    return replace(
        base,
        mfa_registration=MfaRegistrationPolicy(
            enforced=enforced, audience=Audience(exclude_groups=exclude_groups), **mfa
        ),
        sspr=sspr_policy,
        methods=methods,
        wizard_preference=preference,
    )


PLAN_CASES = [
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(sspr="all", required=2, preference=(K.TOTP, K.PUSH)),
        {K.TOTP, K.PUSH, K.EMAIL},
        [K.TOTP, K.EMAIL],
        False,
        id="sspr(2): push and TOTP are one channel (the phone app), so email is the second",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(),
        ALL_KINDS,
        [K.PUSH],
        False,
        id="mfa enforced, nothing registered -> the most secure method without special hardware",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(preference=(K.TOTP,)),
        ALL_KINDS,
        [K.TOTP],
        False,
        id="admin preference puts the authenticator app first",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(off=frozenset({K.WEBAUTHN})),
        ALL_KINDS,
        [K.PUSH],
        False,
        id="a method off in the methods policy is skipped",
    ),
    pytest.param(
        [N.PER_USER_MFA_ENFORCED],
        [],
        policies(enforced=False),
        {K.TOTP, K.EMAIL},
        [K.TOTP],
        False,
        id="per-user MFA enforced alone -> one MFA method",
    ),
    pytest.param(
        [N.CONDITIONAL_ACCESS_MFA],
        [],
        policies(enforced=False),
        {K.MOBILE_PHONE, K.TOTP},
        [K.TOTP],
        False,
        id="CA grant requiring MFA -> one MFA method",
    ),
    pytest.param(
        [N.ADMIN_REREGISTER],
        [],
        policies(),
        {K.TOTP},
        [K.TOTP],
        False,
        id="admin asked for re-registration -> MFA method again",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(sspr="all", required=1),
        {K.TOTP, K.EMAIL},
        [K.TOTP],
        False,
        id="mfa and sspr(1): one method that serves both",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED, N.SSPR_REGISTRATION],
        [],
        policies(sspr="all", required=2),
        {K.TOTP, K.EMAIL, K.MOBILE_PHONE},
        [K.TOTP, K.MOBILE_PHONE],
        False,
        id="mfa and sspr(2): two distinct methods",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(sspr="all", required=2),
        {K.TOTP, K.EMAIL},
        [K.TOTP, K.EMAIL],
        False,
        id="mfa trigger for an sspr user covers sspr(2) at the same time",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(enforced=False, sspr="all", required=1),
        {K.TOTP, K.EMAIL},
        [K.TOTP],
        False,
        id="sspr only(1): the most secure sspr method",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(enforced=False, sspr="all", sspr_methods=frozenset({K.EMAIL, K.MOBILE_PHONE})),
        {K.TOTP, K.EMAIL, K.MOBILE_PHONE},
        [K.MOBILE_PHONE],
        False,
        id="sspr only: methods outside the sspr policy are not planned",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [rec(K.EMAIL)],
        policies(enforced=False, sspr="all", required=2),
        {K.TOTP, K.EMAIL, K.MOBILE_PHONE},
        [K.TOTP],
        False,
        id="sspr(2) with email already -> one more, not email again",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [rec(K.EMAIL)],
        policies(sspr="all", required=1),
        {K.TOTP, K.EMAIL},
        [K.TOTP],
        False,
        id="email does not satisfy MFA: an MFA method is still planned",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [rec(K.SECURITY_QUESTIONS)],
        policies(sspr="all", sspr_methods=frozenset({K.SECURITY_QUESTIONS, K.TOTP})),
        {K.TOTP, K.SECURITY_QUESTIONS},
        [K.TOTP],
        False,
        id="security questions do not satisfy MFA",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(enforced=False, sspr="all", sspr_methods=frozenset({K.SECURITY_QUESTIONS})),
        {K.SECURITY_QUESTIONS},
        [],
        True,
        id="questions may not be the only reset method -> unsatisfiable",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(
            enforced=False,
            sspr="all",
            questions_alone=True,
            sspr_methods=frozenset({K.SECURITY_QUESTIONS}),
        ),
        {K.SECURITY_QUESTIONS},
        [K.SECURITY_QUESTIONS],
        False,
        id="allow_questions_alone restores the original behaviour",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(
            enforced=False,
            sspr="all",
            required=2,
            sspr_methods=frozenset({K.SECURITY_QUESTIONS, K.EMAIL}),
        ),
        {K.SECURITY_QUESTIONS, K.EMAIL},
        [K.EMAIL, K.SECURITY_QUESTIONS],
        False,
        id="questions as the second of two methods are fine",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(),
        {K.EMAIL, K.SECURITY_QUESTIONS},
        [],
        True,
        id="no allowed MFA method -> unsatisfiable, not a loop",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(off=frozenset(K)),
        ALL_KINDS,
        [],
        True,
        id="every method off -> unsatisfiable",
    ),
    pytest.param(
        [N.SSPR_REGISTRATION],
        [],
        policies(enforced=False, sspr="all", required=2),
        {K.TOTP},
        [K.TOTP],
        True,
        id="sspr(2) but one allowed kind -> unsatisfiable",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [rec(K.TOTP)],
        policies(),
        {K.TOTP},
        [],
        False,
        id="an MFA method already registered -> nothing to plan",
    ),
    pytest.param(
        [N.SSPR_RECONFIRM],
        [rec(K.TOTP)],
        policies(sspr="all"),
        {K.TOTP},
        [],
        False,
        id="re-confirm only -> no new method",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(),
        {K.APP_PASSWORD, K.TOTP},
        [K.TOTP],
        False,
        id="app passwords are never planned",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(),
        {K.OFFICE_PHONE, K.HARDWARE_OATH, K.TOTP},
        [K.TOTP],
        False,
        id="kinds users cannot register themselves are never planned",
    ),
    pytest.param(
        [N.MFA_REGISTRATION_ENFORCED],
        [],
        policies(),
        PHONE_ONLY,
        [K.MOBILE_PHONE],
        False,
        id="a deployment with phones only plans the phone",
    ),
]


@pytest.mark.parametrize(
    ("needs", "have", "pol", "registrable", "expected", "unsatisfiable"), PLAN_CASES
)
def test_plan(
    needs: list[N],
    have: list[MethodRecord],
    pol: PolicyConfig,
    registrable: set[K],
    expected: list[K],
    unsatisfiable: bool,
) -> None:
    plan = plan_registration(
        needs=needs,
        user_id="u",
        groups=frozenset(),
        methods=have,
        policies=pol,
        registrable=registrable,
    )
    assert list(plan.kinds) == expected
    assert plan.unsatisfiable is unsatisfiable


def test_alternatives_offer_every_other_allowed_kind_most_secure_first() -> None:
    plan = plan_registration(
        needs=[N.MFA_REGISTRATION_ENFORCED],
        user_id="u",
        groups=frozenset(),
        methods=[],
        policies=policies(preference=(K.TOTP,)),
        registrable={K.TOTP, K.WEBAUTHN, K.MOBILE_PHONE, K.APP_PASSWORD},
    )
    assert plan.kinds == (K.TOTP,)
    assert plan.alternatives == (K.WEBAUTHN, K.MOBILE_PHONE)


def test_purposes_say_which_feature_each_step_is_for() -> None:
    plan = plan_registration(
        needs=[N.MFA_REGISTRATION_ENFORCED],
        user_id="u",
        groups=frozenset(),
        methods=[],
        policies=policies(sspr="all", required=2),
        registrable={K.WEBAUTHN, K.EMAIL},
    )
    assert [(s.kind, s.purpose) for s in plan.steps] == [(K.WEBAUTHN, "mfa"), (K.EMAIL, "sspr")]
    assert plan.unsatisfiable  # WebAuthn does not count for password reset: one SSPR method short


# -- triggers -----------------------------------------------------------------------------------


def facts(
    *,
    methods: list[MethodRecord] | None = None,
    state: UserState | None = None,
    groups: frozenset[str] = frozenset(),
    per_user: PerUserMfa = PerUserMfa.DISABLED,
    now: float = NOW,
    **kw: Any,
) -> SignInFacts:
    return SignInFacts(
        user_id="u",
        groups=groups,
        per_user_mfa=per_user,
        methods=methods or [],
        state=state or UserState(user_id="u"),
        now=now,
        mfa_done=False,
        **kw,
    )


TRIGGER_CASES = [
    pytest.param(
        facts(), policies(), [N.MFA_REGISTRATION_ENFORCED], id="mfa registration enforced"
    ),
    pytest.param(
        facts(groups=frozenset({"bg"})),
        policies(exclude_groups=frozenset({"bg"})),
        [],
        id="excluded group -> no trigger",
    ),
    pytest.param(
        facts(per_user=PerUserMfa.ENFORCED),
        policies(enforced=False),
        [N.PER_USER_MFA_ENFORCED],
        id="per-user MFA enforced",
    ),
    pytest.param(
        facts(per_user=PerUserMfa.ENABLED),
        policies(enforced=False),
        [],
        id="per-user MFA enabled (not enforced) -> no interrupt",
    ),
    pytest.param(
        facts(ca_requires_mfa=True),
        policies(enforced=False),
        [N.CONDITIONAL_ACCESS_MFA],
        id="CA requires MFA for the app",
    ),
    pytest.param(
        facts(),
        policies(enforced=False, sspr="all"),
        [N.SSPR_REGISTRATION],
        id="sspr registration required",
    ),
    pytest.param(
        facts(methods=[rec(K.TOTP, NOW - 200 * DAY)]),
        policies(enforced=False, sspr="all"),
        [N.SSPR_RECONFIRM],
        id="re-confirm due after 180 days",
    ),
    pytest.param(
        facts(methods=[rec(K.TOTP, NOW - 100 * DAY)]),
        policies(enforced=False, sspr="all"),
        [],
        id="re-confirm not yet due",
    ),
    pytest.param(
        facts(methods=[rec(K.TOTP)], state=UserState(user_id="u", reregister=True)),
        policies(),
        [N.ADMIN_REREGISTER],
        id="admin re-registration request",
    ),
    pytest.param(
        facts(state=UserState(user_id="u", snoozed_until=NOW + DAY)),
        policies(sspr="all"),
        [],
        id="postponed -> policy triggers wait",
    ),
    pytest.param(
        facts(state=UserState(user_id="u", snoozed_until=NOW + DAY), per_user=PerUserMfa.ENFORCED),
        policies(),
        [N.PER_USER_MFA_ENFORCED],
        id="postponing never holds back per-user MFA",
    ),
]


@pytest.mark.parametrize(("f", "pol", "expected"), TRIGGER_CASES)
def test_triggers(f: SignInFacts, pol: PolicyConfig, expected: list[N]) -> None:
    assert list(registration_needs(f, pol)) == expected


@pytest.mark.parametrize(
    ("needs", "used", "deadline", "expected"),
    [
        pytest.param(
            [N.MFA_REGISTRATION_ENFORCED], 0, None, 3, id="three skips allowed, none used"
        ),
        pytest.param([N.MFA_REGISTRATION_ENFORCED], 3, None, 0, id="allowance used up"),
        pytest.param(
            [N.MFA_REGISTRATION_ENFORCED], 0, dt.date(2020, 1, 1), 0, id="after the deadline"
        ),
        pytest.param(
            [N.MFA_REGISTRATION_ENFORCED], 1, dt.date(2030, 1, 1), 2, id="before the deadline"
        ),
        pytest.param([N.PER_USER_MFA_ENFORCED], 0, None, 0, id="per-user MFA cannot be skipped"),
        pytest.param(
            [N.CONDITIONAL_ACCESS_MFA], 0, None, 0, id="a CA requirement cannot be skipped"
        ),
    ],
)
def test_skip_allowance(needs: list[N], used: int, deadline: dt.date | None, expected: int) -> None:
    pol = policies(skips_allowed=3, deadline=deadline)
    state = UserState(user_id="u", skips_used=used)
    assert skips_left(needs, state, pol, NOW) == expected


def test_next_step_order_block_then_mfa_then_register() -> None:
    pol = policies(sspr="all")
    assert next_step(facts(ca_blocked=True), pol).kind is StepKind.BLOCKED
    with_method = facts(methods=[rec(K.TOTP, NOW - 400 * DAY)])
    assert next_step(with_method, pol).kind is StepKind.MFA
    assert next_step(replace(with_method, mfa_done=True), pol).kind is StepKind.REGISTER
    done = replace(with_method, mfa_done=True, registration_handled=True)
    assert next_step(done, pol).kind is StepKind.DONE
    no_method_ca = facts(ca_requires_mfa=True, registration_handled=True)
    assert next_step(no_method_ca, policies(enforced=False)).kind is StepKind.BLOCKED


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        pytest.param([rec(K.OFFICE_PHONE, 0.0)], [], id="the directory's office phone alone"),
        pytest.param(
            [rec(K.OFFICE_PHONE, 0.0), rec(K.TOTP, NOW - 10 * DAY)],
            [],
            id="office phone and an app registered 10 days ago",
        ),
        pytest.param(
            [rec(K.OFFICE_PHONE, 0.0), rec(K.TOTP, NOW - 200 * DAY)],
            [N.SSPR_RECONFIRM],
            id="office phone and an app registered 200 days ago",
        ),
    ],
)
def test_a_directory_office_phone_never_starts_the_reconfirm_clock(
    methods: list[MethodRecord], expected: list[N]
) -> None:
    """Issue 23.5: the office phone comes from the directory (dated 0, the user never registered
    it): the re-confirm interval counts from what the user registered, and a user with only
    directory methods has nothing of theirs to re-confirm."""
    pol = policies(enforced=False, sspr="all")
    assert list(registration_needs(facts(methods=methods), pol)) == expected

"""policy/reset.py: channels, N of M, the MFA rule, questions never alone, eligibility, choices."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.policy.config import EnabledFor, PolicyConfig, SsprPolicy
from oidc_combinedreg.policy.reset import (
    Passed,
    ResetBlock,
    ResetChoice,
    ResetFacts,
    channel_of,
    eligibility,
    next_choices,
    offered_choices,
    passed_from,
    satisfied,
)
from oidc_combinedreg.store.base import MethodRecord

K = MethodKind
ALL_SSPR = frozenset(
    {K.TOTP, K.PUSH, K.HARDWARE_OATH, K.MOBILE_PHONE, K.ALTERNATE_PHONE, K.OFFICE_PHONE, K.EMAIL}
    | {K.SECURITY_QUESTIONS}
)


def rec(kind: MethodKind, i: int = 0, **data: str) -> MethodRecord:
    return MethodRecord(
        id=f"{kind.value}-{i}", user_id="u", kind=kind, label="", created_at=0.0, data=data
    )


def policies(required: int = 1, *, alone: bool = False, **sspr: object) -> PolicyConfig:
    base = PolicyConfig()
    methods = dict(base.methods)
    methods[K.SECURITY_QUESTIONS] = replace(methods[K.SECURITY_QUESTIONS], enabled=True)
    policy = SsprPolicy(
        enabled_for=EnabledFor.ALL,
        methods=ALL_SSPR,
        methods_required=required,
        allow_questions_alone=alone,
    )
    return replace(base, sspr=replace(policy, **sspr), methods=methods)  # type: ignore[arg-type]


PHONE = "+14255550123"


@pytest.mark.parametrize(
    "a, b, same",
    [
        pytest.param(rec(K.MOBILE_PHONE, phone=PHONE), rec(K.MOBILE_PHONE, phone=PHONE), True,
                     id="text and call to the mobile phone are one channel"),
        pytest.param(rec(K.MOBILE_PHONE, phone=PHONE), rec(K.OFFICE_PHONE, phone=PHONE), True,
                     id="office phone with the mobile's number is the same channel"),
        pytest.param(rec(K.MOBILE_PHONE, phone=PHONE), rec(K.ALTERNATE_PHONE, phone="+1425555"), False,
                     id="two different numbers are two channels"),
        pytest.param(rec(K.EMAIL, email="a@x.test"), rec(K.TOTP), False,
                     id="email and an authenticator app are distinct"),
        pytest.param(rec(K.TOTP, 1), rec(K.PUSH, 2), True,
                     id="every authenticator app is one channel"),
        pytest.param(rec(K.HARDWARE_OATH, 1), rec(K.HARDWARE_OATH, 2), False,
                     id="each hardware token is its own channel"),
        pytest.param(rec(K.EMAIL, email="A@X.test"), rec(K.EMAIL, email="a@x.test"), True,
                     id="an address differing in case is the same channel"),
    ],
)  # fmt: skip
def test_channels(a: MethodRecord, b: MethodRecord, same: bool) -> None:
    assert (channel_of(a) == channel_of(b)) is same


def p(kind: MethodKind, channel: str | None = None) -> Passed:
    return replace(passed_from(rec(kind, email="a@x.test", phone=PHONE)), channel=channel or kind)


@pytest.mark.parametrize(
    "passed, required, has_mfa, alone, ok",
    [
        pytest.param([p(K.EMAIL)], 1, False, False, True, id="email is enough for a user without MFA"),
        pytest.param([p(K.EMAIL)], 1, True, False, False, id="email alone is not enough for an MFA user"),
        pytest.param([p(K.TOTP)], 1, True, False, True, id="an app code is enough for an MFA user"),
        pytest.param([p(K.EMAIL), p(K.TOTP)], 2, True, False, True, id="email and app make 2 of 2"),
        pytest.param([p(K.MOBILE_PHONE, "phone:1"), p(K.MOBILE_PHONE, "phone:1")], 2, True, False,
                     False, id="text and call to one phone are 1 of 2"),
        pytest.param([p(K.SECURITY_QUESTIONS)], 1, False, False, False, id="questions alone: no"),
        pytest.param([p(K.SECURITY_QUESTIONS)], 1, False, True, True,
                     id="questions alone when the config allows it"),
        pytest.param([p(K.SECURITY_QUESTIONS), p(K.EMAIL)], 2, False, False, True,
                     id="questions with email for a user without MFA"),
        pytest.param([p(K.SECURITY_QUESTIONS), p(K.EMAIL)], 2, True, False, False,
                     id="questions with email is not enough for an MFA user"),
        pytest.param([], 1, False, True, False, id="nothing passed"),
    ],
)  # fmt: skip
def test_satisfied(
    passed: list[Passed], required: int, has_mfa: bool, alone: bool, ok: bool
) -> None:
    assert satisfied(passed, required=required, has_mfa=has_mfa, allow_questions_alone=alone) is ok


def facts(*methods: MethodRecord, **kw: object) -> ResetFacts:
    return ResetFacts(user_id="u", exists=True, methods=methods, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "f, pol, block",
    [
        pytest.param(ResetFacts(user_id="x", exists=False), policies(), ResetBlock.UNKNOWN_ACCOUNT,
                     id="unknown account"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test"), enabled=False), policies(),
                     ResetBlock.DISABLED, id="disabled account"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test")), policies(enabled_for=EnabledFor.NONE),
                     ResetBlock.NOT_ENABLED, id="outside the SSPR policy"),
        pytest.param(facts(), policies(), ResetBlock.TOO_FEW_METHODS, id="no methods"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test")), policies(2), ResetBlock.TOO_FEW_METHODS,
                     id="one method when two are required"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test"), rec(K.WEBAUTHN)), policies(),
                     ResetBlock.TOO_FEW_METHODS, id="passkey user with only email to reset"),
        pytest.param(facts(rec(K.SECURITY_QUESTIONS)), policies(), ResetBlock.TOO_FEW_METHODS,
                     id="questions alone"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test")), policies(), None, id="email user"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test"), rec(K.TOTP)), policies(2), None,
                     id="email and app for two"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test")),
                     policies(methods=frozenset({K.TOTP})), ResetBlock.TOO_FEW_METHODS,
                     id="a method the SSPR policy does not list"),
        pytest.param(facts(rec(K.EMAIL, email="a@x.test"), deliverable=frozenset({K.TOTP})),
                     policies(), ResetBlock.TOO_FEW_METHODS, id="email without an email provider"),
    ],
)  # fmt: skip
def test_eligibility(f: ResetFacts, pol: PolicyConfig, block: ResetBlock | None) -> None:
    assert eligibility(f, pol).block is block


ALL_CHOICES = frozenset(ResetChoice)


def test_the_first_choices_are_the_same_for_everyone_and_skip_questions_for_one_method() -> None:
    one = offered_choices(policies(1), ALL_CHOICES)
    assert ResetChoice.QUESTIONS not in one and ResetChoice.EMAIL in one
    assert ResetChoice.QUESTIONS in offered_choices(policies(2), ALL_CHOICES)
    assert ResetChoice.QUESTIONS in offered_choices(policies(1, alone=True), ALL_CHOICES)
    no_mail = offered_choices(policies(1), ALL_CHOICES - {ResetChoice.EMAIL})
    assert ResetChoice.EMAIL not in no_mail
    assert next_choices(one, [], [], required=1, has_mfa=True) == one


def test_after_email_an_mfa_user_is_offered_only_mfa_methods() -> None:
    offered = offered_choices(policies(2), ALL_CHOICES)
    left = next_choices(offered, [ResetChoice.EMAIL], [p(K.EMAIL)], required=2, has_mfa=True)
    assert left and all(c not in left for c in (ResetChoice.EMAIL, ResetChoice.QUESTIONS))
    left = next_choices(offered, [ResetChoice.EMAIL], [p(K.EMAIL)], required=2, has_mfa=False)
    assert ResetChoice.QUESTIONS in left and ResetChoice.EMAIL not in left


def test_questions_users_write_come_only_after_another_method() -> None:
    """A question of the user's own would show that the account exists: never in the first list
    (which is the same for every account), offered once another method proved the user."""
    offered = offered_choices(policies(2), ALL_CHOICES)
    assert ResetChoice.QUESTIONS in offered
    first = next_choices(offered, [], [], required=2, has_mfa=False, custom_questions=True)
    assert ResetChoice.QUESTIONS not in first and ResetChoice.EMAIL in first
    assert next_choices(offered, [], [], required=2, has_mfa=False) == offered
    later = next_choices(
        offered, [ResetChoice.EMAIL], [p(K.EMAIL)], required=2, has_mfa=False,
        custom_questions=True,
    )  # fmt: skip
    assert ResetChoice.QUESTIONS in later

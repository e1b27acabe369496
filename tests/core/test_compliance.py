"""Replace before remove: which deletes would leave a user out of compliance (pure core)."""

from __future__ import annotations

import pytest

from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.methods.kinds import MethodKind as K
from oidc_combinedreg.policy.audience import Audience
from oidc_combinedreg.policy.compliance import (
    Shortfall,
    UserFacts,
    delete_shortfalls,
    kinds_that_fix,
)
from oidc_combinedreg.policy.config import (
    EnabledFor,
    MethodPolicy,
    MfaRegistrationPolicy,
    PolicyConfig,
    SsprPolicy,
)
from oidc_combinedreg.store.base import MethodRecord

USER = UserFacts(user_id="u", groups=frozenset({"staff"}))


def rec(kind: K, n: int = 1) -> MethodRecord:
    return MethodRecord(id=f"{kind.value}-{n}", user_id="u", kind=kind, label="", created_at=0.0)


def policies(
    *,
    mfa: bool = False,
    sspr: bool = False,
    required: int = 1,
    questions_alone: bool = False,
    exclude_groups: frozenset[str] = frozenset(),
) -> PolicyConfig:
    methods = {k: MethodPolicy(enabled=True) for k in K}
    return PolicyConfig(
        mfa_registration=MfaRegistrationPolicy(
            enforced=mfa, audience=Audience(exclude_groups=exclude_groups)
        ),
        sspr=SsprPolicy(
            enabled_for=EnabledFor.ALL if sspr else EnabledFor.NONE,
            methods=frozenset(K) - {K.APP_PASSWORD, K.WEBAUTHN},
            methods_required=required,
            allow_questions_alone=questions_alone,
        ),
        methods=methods,
    )


TOTP, TOTP2, PHONE, EMAIL, KEY = (
    rec(K.TOTP),
    rec(K.TOTP, 2),
    rec(K.MOBILE_PHONE),
    rec(K.EMAIL),
    rec(K.WEBAUTHN),
)
QUESTIONS, OFFICE, APP_PW = rec(K.SECURITY_QUESTIONS), rec(K.OFFICE_PHONE), rec(K.APP_PASSWORD)


@pytest.mark.parametrize(
    ("methods", "target", "config", "user", "expected"),
    [
        pytest.param(
            [TOTP],
            TOTP,
            policies(mfa=True),
            USER,
            (Shortfall.MFA,),
            id="last MFA method under enforced MFA registration -> refused",
        ),
        pytest.param(
            [TOTP, PHONE],
            TOTP,
            policies(mfa=True),
            USER,
            (),
            id="another MFA method remains -> allowed",
        ),
        pytest.param(
            [TOTP, OFFICE],
            TOTP,
            policies(mfa=True),
            USER,
            (),
            id="the directory's office phone remains -> allowed",
        ),
        pytest.param(
            [TOTP, EMAIL],
            TOTP,
            policies(mfa=True),
            USER,
            (Shortfall.MFA,),
            id="only an email would remain: not MFA -> refused",
        ),
        pytest.param(
            [TOTP],
            TOTP,
            policies(),
            USER,
            (),
            id="MFA not enforced -> the last method may go",
        ),
        pytest.param(
            [TOTP],
            TOTP,
            policies(mfa=True, exclude_groups=frozenset({"staff"})),
            USER,
            (),
            id="user excluded from the MFA registration policy -> allowed",
        ),
        pytest.param(
            [TOTP],
            TOTP,
            policies(),
            UserFacts(user_id="u", per_user_mfa=PerUserMfa.ENFORCED),
            (Shortfall.MFA,),
            id="per-user MFA enforced -> the last MFA method stays",
        ),
        pytest.param(
            [TOTP],
            TOTP,
            policies(),
            UserFacts(user_id="u", per_user_mfa=PerUserMfa.ENABLED),
            (),
            id="per-user MFA only enabled -> allowed",
        ),
        pytest.param(
            [TOTP, APP_PW],
            APP_PW,
            policies(mfa=True),
            USER,
            (),
            id="an app password is never needed for compliance",
        ),
        pytest.param(
            [TOTP, EMAIL],
            EMAIL,
            policies(sspr=True),
            USER,
            (),
            id="one reset method required, another remains -> allowed",
        ),
        pytest.param(
            [TOTP, EMAIL],
            EMAIL,
            policies(sspr=True, required=2),
            USER,
            (Shortfall.SSPR,),
            id="two reset methods required, one would remain -> refused",
        ),
        pytest.param(
            [TOTP, TOTP2, EMAIL],
            TOTP2,
            policies(sspr=True, required=2),
            USER,
            (),
            id="a second app of the same kind does not count twice -> allowed",
        ),
        pytest.param(
            [EMAIL],
            EMAIL,
            policies(sspr=True),
            USER,
            (Shortfall.SSPR,),
            id="the only reset method -> refused",
        ),
        pytest.param(
            [KEY, EMAIL],
            KEY,
            policies(sspr=True),
            USER,
            (),
            id="a security key does not count for reset -> its delete breaks nothing",
        ),
        pytest.param(
            [TOTP, QUESTIONS],
            TOTP,
            policies(sspr=True),
            USER,
            (Shortfall.SSPR,),
            id="questions would be left alone -> refused",
        ),
        pytest.param(
            [TOTP, QUESTIONS],
            TOTP,
            policies(sspr=True, questions_alone=True),
            USER,
            (),
            id="questions alone allowed by the policy -> allowed",
        ),
        pytest.param(
            [TOTP],
            TOTP,
            policies(mfa=True, sspr=True),
            USER,
            (Shortfall.MFA, Shortfall.SSPR),
            id="the only method under both policies -> both named",
        ),
        pytest.param(
            [TOTP],
            rec(K.PUSH),
            policies(mfa=True),
            USER,
            (),
            id="a method id the user does not have breaks nothing",
        ),
        pytest.param(
            [EMAIL, QUESTIONS],
            QUESTIONS,
            policies(sspr=True, required=3),
            USER,
            (Shortfall.SSPR,),
            id="already short of reset methods -> still no further loss",
        ),
        pytest.param(
            [TOTP, rec(K.PUSH), EMAIL],
            TOTP,
            policies(sspr=True, required=2),
            USER,
            (),
            id="push and TOTP are one phone app: dropping TOTP loses no channel",
        ),
        pytest.param(
            [TOTP, rec(K.PUSH), EMAIL],
            EMAIL,
            policies(sspr=True, required=2),
            USER,
            (Shortfall.SSPR,),
            id="push and TOTP count once: dropping email leaves one channel -> refused",
        ),
        pytest.param(
            [TOTP, rec(K.PUSH)],
            TOTP,
            policies(sspr=True, required=2),
            USER,
            (),
            id="already one channel short: dropping a second app changes nothing",
        ),
        pytest.param(
            [EMAIL, KEY],
            KEY,
            policies(sspr=True, required=3),
            USER,
            (),
            id="already short of reset methods -> an unrelated delete is fine",
        ),
    ],
)
def test_delete_shortfalls(
    methods: list[MethodRecord],
    target: MethodRecord,
    config: PolicyConfig,
    user: UserFacts,
    expected: tuple[Shortfall, ...],
) -> None:
    assert delete_shortfalls(methods, target.id, user, config) == expected


def test_kinds_that_fix_an_mfa_shortfall_are_registrable_mfa_kinds_most_secure_first() -> None:
    fixes = kinds_that_fix(Shortfall.MFA, [TOTP], TOTP.id, USER, policies(mfa=True))
    assert fixes[0] is K.WEBAUTHN
    assert K.TOTP in fixes and K.MOBILE_PHONE in fixes
    # Not MFA, or not registered by users themselves:
    assert not {K.EMAIL, K.SECURITY_QUESTIONS, K.HARDWARE_OATH, K.OFFICE_PHONE} & set(fixes)


def test_kinds_that_fix_an_sspr_shortfall_skip_kinds_already_counted() -> None:
    fixes = kinds_that_fix(Shortfall.SSPR, [TOTP, EMAIL], EMAIL.id, USER, policies(sspr=True))
    assert K.TOTP not in fixes  # another app would not add a reset method
    assert K.EMAIL in fixes  # a new address before the old one goes
    assert K.MOBILE_PHONE in fixes and K.WEBAUTHN not in fixes


def test_kinds_that_fix_respect_the_authentication_methods_policy() -> None:
    config = policies(mfa=True)
    off = {**config.methods, K.WEBAUTHN: MethodPolicy(enabled=False)}
    config = PolicyConfig(mfa_registration=config.mfa_registration, methods=off)
    assert K.WEBAUTHN not in kinds_that_fix(Shortfall.MFA, [TOTP], TOTP.id, USER, config)

"""Security questions are never the only method a password reset rests on (SECURITY.md case 36),
so a user whose only reset method is a set of questions is asked at sign-in to register another.

The reset flow already refuses such a user (policy/reset.py ``satisfied``) and the registration
report counts them as not registered; before this, the sign-in counted the questions as enough and
never asked, so the user only learned at the reset, locked out, that they could not reset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_planner import facts, policies, rec

from oidc_combinedreg.cli import main
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind as K
from oidc_combinedreg.policy.planner import plan_registration
from oidc_combinedreg.policy.signin import RegistrationNeed as N
from oidc_combinedreg.policy.signin import registration_needs

RESET_KINDS = frozenset({K.SECURITY_QUESTIONS, K.EMAIL, K.MOBILE_PHONE})


@pytest.mark.parametrize(
    ("questions_alone", "expected"),
    [
        pytest.param(False, [N.SSPR_REGISTRATION], id="default: questions alone -> register more"),
        pytest.param(True, [], id="allow_questions_alone: the questions are enough"),
    ],
)
def test_questions_alone_need_another_reset_method(
    questions_alone: bool, expected: list[N]
) -> None:
    pol = policies(
        enforced=False, sspr="all", sspr_methods=RESET_KINDS, questions_alone=questions_alone
    )
    f = facts(methods=[rec(K.SECURITY_QUESTIONS)])
    assert list(registration_needs(f, pol)) == expected


def test_the_plan_for_questions_alone_adds_a_method_that_is_not_questions() -> None:
    pol = policies(enforced=False, sspr="all", sspr_methods=RESET_KINDS)
    plan = plan_registration(
        needs=[N.SSPR_REGISTRATION],
        user_id="u",
        groups=frozenset(),
        methods=[rec(K.SECURITY_QUESTIONS)],
        policies=pol,
        registrable=RESET_KINDS,
    )
    assert not plan.unsatisfiable
    assert [(s.kind, s.purpose) for s in plan.steps] == [(K.MOBILE_PHONE, "sspr")]


def test_questions_with_another_reset_method_are_enough() -> None:
    pol = policies(enforced=False, sspr="all", sspr_methods=RESET_KINDS)
    f = facts(methods=[rec(K.SECURITY_QUESTIONS), rec(K.EMAIL)])
    assert list(registration_needs(f, pol)) == []


def test_check_config_warns_when_questions_alone_may_reset(tmp_path: Path) -> None:
    """The switch that restores the original product's behaviour is allowed, and named."""
    path = tmp_path / "c.toml"
    base = f'[secrets]\nencryption_keys = ["{generate_key()}"]\n'
    path.write_text(base)
    quiet = CliRunner().invoke(main, ["check-config", str(path)])
    assert quiet.exit_code == 0 and "allow_questions_alone" not in quiet.output
    path.write_text(base + "[policies.sspr]\nallow_questions_alone = true\n")
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: policies.sspr.allow_questions_alone: " in result.output
    assert "security questions alone" in result.output

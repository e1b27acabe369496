"""Security questions when an admin turns them on, through the WSGI stack (SECURITY.md case 36).

Off by default (tests/core/test_questions.py). Turned on, they may be registered in the wizard (for
the password-reset step only) and in manage mode; the answers are normalized and Argon2id-hashed,
the hashes encrypted at rest (read back from the SQLite file here); wrong answers are throttled on
the reset flow's own counters; they never pass the MFA step or the security-info gate; and by
default they are never the only method a reset rests on, so the wizard asks for another one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import argon2
import pyotp
import pytest
from reset_helpers import Reset, ResetEnv, add_questions, add_totp, make_env
from test_web_manage import enrolled
from webtest import Browser, code_from, location

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import SecretHasher
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.questions import normalize_answer
from oidc_combinedreg.service.base import secret_context

QUESTIONS = "/security-info/add/security_questions"
MFA = "/security-info/mfa"
TYPED = ("  Amsterdam   HARBOUR ", "Blue\tBicycle", "ＧＲＡＮＤＭＡ Rosa")


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    # Two methods for a reset: the wizard plans an app (MFA and reset) and a second reset method.
    return make_env(tmp_path, clock, monkeypatch, required=2)


def _answer_form(page: dict[str, object], token: str, answers: tuple[str, ...]) -> dict[str, str]:
    questions = list(page["predefined"])  # type: ignore[call-overload]
    form = {"action": "next", "csrf_token": token}
    for i, answer in enumerate(answers):
        form |= {f"question{i}": questions[i], f"answer{i}": answer}
    return form


def _questions_record(browser: Browser) -> object:
    [record] = [
        m
        for m in browser.reg.store.list_methods("alice")
        if m.kind is MethodKind.SECURITY_QUESTIONS
    ]
    return record


def test_the_wizard_offers_questions_for_the_reset_step_only(env: ResetEnv) -> None:
    b = env.browser
    b.login("alice")
    wizard = location(b.authorize())
    first = b.get_json(wizard).get_json()
    assert first["progress"]["kind"] == "totp" and first["progress"]["purpose"] == "both"
    # The first step must give MFA: questions cannot stand in for it.
    token = first["csrf_token"]
    r = b.post_json(wizard, {"action": "choose", "kind": "security_questions", "csrf_token": token})
    assert r.status_code == 200 and "security_questions" not in {
        a["kind"] for a in r.get_json()["alternatives"]
    }
    assert b.get_json(wizard).get_json()["progress"]["kind"] == "totp"
    b.register_totp(wizard)
    second = b.get_json(wizard).get_json()
    assert second["progress"]["purpose"] == "sspr"
    r = b.post_json(wizard, {"action": "choose", "kind": "security_questions", "csrf_token": token})
    assert r.status_code == 303
    page = b.get_json(wizard).get_json()
    assert page["page"] == "questions" and page["progress"]["kind"] == "security_questions"
    r = b.post_json(wizard, _answer_form(page, token, TYPED))
    assert r.status_code == 303, r.get_data(as_text=True)
    assert b.get_json(wizard).get_json()["page"] == "method_added"
    b.post_json(wizard, {"action": "next", "csrf_token": token})
    r = b.post_json(wizard, {"action": "finish", "csrf_token": token})
    code = code_from(b.get(location(r)))
    assert code is not None
    # The MFA in the ID token came from the app; the questions add nothing to amr.
    assert set(b.host.codes[code]["amr"]) == {"pwd", "otp", "mfa"}
    assert _questions_record(b) is not None


def test_manage_mode_stores_normalized_answers_as_argon2id_hashes_encrypted_at_rest(
    env: ResetEnv, tmp_path: Path
) -> None:
    b = env.browser
    b.reg.info.questions.hasher = SecretHasher()  # the real Argon2id parameters for this test
    enrolled(b)  # an app in the wizard: MFA is fresh for manage mode
    page = b.get_json(QUESTIONS).get_json()
    assert page["page"] == "questions" and page["count"] == 3
    r = b.post_json(QUESTIONS, _answer_form(page, page["csrf_token"], TYPED))
    assert location(r) == "/security-info/?done=added"
    record = _questions_record(b)

    # The database file holds no answer in any form we could search for.
    b.reg.store.close()
    raw = (tmp_path / "reg.sqlite3").read_bytes()
    for suffix in ("-wal",):
        wal = tmp_path / f"reg.sqlite3{suffix}"
        if wal.exists():
            raw += wal.read_bytes()
    for typed in TYPED:
        for form in (typed, normalize_answer(typed)):
            assert form.encode() not in raw and form.encode("utf-16-le") not in raw
    with sqlite3.connect(tmp_path / "reg.sqlite3") as db:
        rows = db.execute("SELECT secret FROM methods WHERE kind = 'security_questions'").fetchall()
    assert len(rows) == 1 and not bytes(rows[0][0]).startswith(b"[")  # ciphertext, not JSON

    # Decrypted with the row's own context: one Argon2id hash per answer, of the normalized text.
    hashes = json.loads(
        b.reg.info.ctx.box.decrypt(
            record.secret,  # type: ignore[attr-defined]
            context=secret_context("alice", record.id),  # type: ignore[attr-defined]
        )
    )
    assert len(hashes) == 3
    verifier = argon2.PasswordHasher()
    for stored, typed in zip(hashes, TYPED, strict=True):
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert verifier.verify(stored, normalize_answer(typed))
        with pytest.raises(argon2.exceptions.VerifyMismatchError):
            verifier.verify(stored, typed)  # the raw typed form was not what was hashed


def test_questions_never_pass_the_mfa_step_or_the_gate(env: ResetEnv) -> None:
    b = env.browser
    secret = add_totp(b.reg, "alice")
    answers = add_questions(b.reg, "alice")
    q_record = _questions_record(b)
    b.clock.advance(60)
    b.login("alice")
    mfa = location(b.authorize())
    page = b.get_json(mfa).get_json()
    offered = {page["method"]["kind"], *(m["kind"] for m in page["others"])}
    assert "security_questions" not in offered
    # Answering the questions at the MFA step, by naming the set: refused, nothing issued.
    right = list(answers.values())
    r = b.post_json(
        mfa,
        {
            "action": "verify",
            "method_id": q_record.id,  # type: ignore[attr-defined]
            "csrf_token": page["csrf_token"],
            "answers": right,
            "answer0": right[0],
            "answer1": right[1],
            "answer2": right[2],
        },
    )
    # The step falls back to the app (questions are no MFA method) and refuses the post.
    assert r.status_code == 400 and r.get_json()["method"]["kind"] == "totp"
    assert b.host.codes == {}
    assert location(b.get_json("/security-info/")) == MFA  # the gate stays shut
    # The app opens both.
    r = b.post_json(
        mfa,
        {
            "code": pyotp.TOTP(secret).at(b.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 303
    assert code_from(b.get(location(r))) is not None


def test_wrong_answers_are_throttled_on_the_reset_flow_and_sign_in_mfa_still_works(
    env: ResetEnv,
) -> None:
    b = env.browser
    secret = add_totp(b.reg, "alice")
    add_questions(b.reg, "alice")
    stranger = Reset(env.new_browser())
    stranger.start("alice")
    page = stranger.choose("questions")
    statuses = [
        stranger.verify(answers=["wrong answer"] * len(page["questions"])).status_code
        for _ in range(12)
    ]
    assert statuses == [400] * 10 + [429, 429]
    failed = env.store.list_audit(user_id="alice", event_prefix="sspr.questions_failed")
    assert len(failed) == 10
    # The owner's own sign-in is untouched: the answers did not count against the sign-in's
    # counters (its window still allows 9 wrong codes), and the app then passes MFA.
    b.clock.advance(60)
    b.login("alice")
    mfa = location(b.authorize())
    page = b.get_json(mfa).get_json()
    wrong = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"], "code": "000000"}
    if pyotp.TOTP(secret).at(b.clock.now()) == "000000":
        wrong["code"] = "111111"
    assert [b.post_json(mfa, wrong).status_code for _ in range(9)] == [400] * 9
    r = b.post_json(
        mfa,
        {
            "code": pyotp.TOTP(secret).at(b.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 303


@pytest.mark.parametrize(
    ("questions_alone", "interrupted"),
    [
        pytest.param(False, True, id="default: questions alone -> the wizard asks for another"),
        pytest.param(True, False, id="allow_questions_alone: the original product's behaviour"),
    ],
)
def test_questions_are_not_the_only_reset_method_by_default(
    make_browser: Callable[..., Browser], questions_alone: bool, interrupted: bool
) -> None:
    b = make_browser(
        policies={
            "mfa_registration": {"enforced": False},
            "wizard_preference": ["totp"],
            "methods": {"security_questions": {"enabled": True}},
            "sspr": {
                "enabled_for": "all",
                "methods_required": 1,
                "methods": ["totp", "email", "mobile_phone", "security_questions"],
                "allow_questions_alone": questions_alone,
            },
        }
    )
    add_questions(b.reg, "alice")
    b.login("alice")
    r = b.authorize()
    if interrupted:
        wizard = location(r)
        assert wizard.startswith("/security-info/wizard"), wizard
        page = b.get_json(wizard).get_json()
        assert page["needs"] == ["sspr_registration"]
        assert page["progress"]["kind"] != "security_questions"
    else:
        assert code_from(r) is not None


@pytest.mark.parametrize(
    ("sspr", "offered"),
    [
        pytest.param({"methods_required": 2}, True, id="two methods for a reset -> offered"),
        pytest.param(
            {"methods_required": 1, "allow_questions_alone": True},
            True,
            id="one method, questions alone allowed -> offered",
        ),
        pytest.param({"methods_required": 1}, False, id="one method: questions never carry it"),
        pytest.param({"enabled_for": "none"}, False, id="self-service reset off"),
        pytest.param(
            {"methods_required": 2, "methods": ["totp", "email", "mobile_phone"]},
            False,
            id="questions not a reset method",
        ),
    ],
)
def test_add_sign_in_method_offers_questions_only_where_a_reset_can_use_them(
    tmp_path: Path,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    sspr: dict[str, object],
    offered: bool,
) -> None:
    """Issue 23.8: questions serve only the password reset; where the reset can never use them
    (SSPR off, not a reset method, or one method required and questions never alone) "Add
    sign-in method" does not list them and their page is refused."""
    env = make_env(tmp_path, clock, monkeypatch, required=2, sspr=sspr)
    b = env.browser
    enrolled(b)
    addable = [a["kind"] for a in b.get_json("/security-info/").get_json()["addable"]]
    assert ("security_questions" in addable) is offered
    assert b.get_json(QUESTIONS).status_code == (200 if offered else 403)

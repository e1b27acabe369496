"""Self-service password reset through the WSGI stack: methods, steps, the new password, afterwards."""

from __future__ import annotations

from pathlib import Path

import plain_wsgi_host
import pyotp
import pytest
from reset_helpers import (
    ANSWERS,
    RESET,
    Reset,
    ResetEnv,
    add_email,
    add_phone,
    add_questions,
    add_totp,
    make_env,
)
from webtest import location

from oidc_combinedreg.clock import FrozenClock


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    return make_env(tmp_path, clock, monkeypatch)


@pytest.fixture
def env2(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    return make_env(tmp_path, clock, monkeypatch, required=2)


def _email_code(env: ResetEnv, to: str) -> str:
    code = env.sender.last_code(to=to)
    assert code is not None
    return code


def _finish(env: ResetEnv, flow: Reset, password: str = "a brand new password") -> None:
    assert flow.page(f"{RESET}/password")["page"] == "reset_password"
    r = flow.new_password(password)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["page"] == "reset_done"
    assert plain_wsgi_host.USERS["alice"] == password


def test_one_method_email_code_resets_the_password(env: ResetEnv) -> None:
    add_email(env.reg, "alice")
    flow = Reset(env.browser)
    chooser = flow.start("alice")
    assert chooser["page"] == "reset_choose"
    assert "email" in chooser["choices"] and "questions" not in chooser["choices"]
    assert flow.choose("email")["page"] == "reset_verify"
    code = _email_code(env, "alice.private@example.test")
    r = flow.verify(code=code)
    assert r.status_code == 303 and location(r) == f"{RESET}/password"
    _finish(env, flow)
    events = [e.event for e in env.store.list_audit(user_id="alice", event_prefix="reset.")]
    assert events == ["reset.completed", "reset.method_passed", "reset.started"]
    assert env.hook_calls == ["alice"]


def test_one_method_totp_code_resets_the_password(env: ResetEnv) -> None:
    secret = add_totp(env.reg, "alice")
    env.browser.clock.advance(30)  # the registration used this time step
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("app_code")
    r = flow.verify(code=pyotp.TOTP(secret).at(env.browser.clock.now()))
    assert r.status_code == 303
    _finish(env, flow)


@pytest.mark.parametrize(
    "first, second",
    [
        pytest.param("email", "app_code", id="email then authenticator app"),
        pytest.param("questions", "app_code", id="questions then authenticator app"),
        pytest.param("app_code", "email", id="authenticator app then email"),
        pytest.param("questions", "email", id="questions then email (user without MFA)"),
    ],
)
def test_two_methods_in_any_order_reset_the_password(
    env2: ResetEnv, first: str, second: str
) -> None:
    env = env2
    secret = add_totp(env.reg, "alice") if "app_code" in (first, second) else ""
    add_email(env.reg, "alice")
    answers = add_questions(env.reg, "alice")
    env.browser.clock.advance(30)
    flow = Reset(env.browser)
    chooser = flow.start("alice")
    assert "questions" in chooser["choices"]
    for i, choice in enumerate((first, second)):
        page = flow.choose(choice)
        if choice == "email":
            fields = {"code": _email_code(env, "alice.private@example.test")}
        elif choice == "app_code":
            fields = {"code": pyotp.TOTP(secret).at(env.browser.clock.now())}
        else:
            fields = {"answers": [answers[q] for q in page["questions"]]}
        r = flow.verify(**fields)
        assert r.status_code == 303, r.get_data(as_text=True)
        assert location(r) == (f"{RESET}/method" if i == 0 else f"{RESET}/password")
        if i == 0:
            assert first not in flow.page(location(r))["choices"]
    _finish(env, flow)


def test_a_text_and_a_call_to_the_same_phone_count_once(env2: ResetEnv) -> None:
    env = env2
    add_phone(env.reg, "alice")
    add_email(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("mobile_text")
    code = env.sender.last_code(to="+14255550123")
    assert code is not None
    assert flow.verify(code=code).status_code == 303
    second = flow.page(f"{RESET}/method")
    assert "mobile_call" not in second["choices"] and "email" in second["choices"]
    r = flow.post("method", action="choose", choice="mobile_call")
    assert r.status_code == 400 and r.get_json()["errors"]["choice"]


def test_a_user_with_mfa_must_pass_an_mfa_method_not_only_email(env: ResetEnv) -> None:
    secret = add_totp(env.reg, "alice")
    add_email(env.reg, "alice")
    env.browser.clock.advance(30)
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    r = flow.verify(code=_email_code(env, "alice.private@example.test"))
    assert location(r) == f"{RESET}/method"  # one method is required, but email alone is not MFA
    assert flow.page(f"{RESET}/method")["choices"] == ["app_code"]
    assert flow.new_password("a brand new password").status_code == 409
    flow.choose("app_code")
    assert flow.verify(code=pyotp.TOTP(secret).at(env.browser.clock.now())).status_code == 303
    _finish(env, flow)


def test_questions_alone_never_reset_by_default(env2: ResetEnv) -> None:
    env = env2
    answers = add_questions(env.reg, "alice")  # the only method: too few
    flow = Reset(env.browser)
    flow.start("alice")
    page = flow.choose("questions")
    assert page["questions"]  # a decoy asks questions like any account
    r = flow.verify(answers=[answers.get(q, "x") for q in page["questions"]])
    assert r.status_code == 400
    reasons = [e.detail["reason"] for e in env.store.list_audit(event_prefix="reset.failed")]
    assert reasons == ["not_eligible"]


def test_wrong_answers_and_codes_fail_and_are_audited(env2: ResetEnv) -> None:
    env = env2
    add_email(env.reg, "alice")
    add_questions(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    page = flow.choose("questions")
    r = flow.verify(answers=["wrong answer"] * len(page["questions"]))
    assert r.status_code == 400 and r.get_json()["errors"]["code"]
    assert "wrong answer" not in r.get_data(as_text=True)
    assert flow.page(f"{RESET}/verify")["questions"] == page["questions"]  # same set until answered
    flow.post("verify", action="other")
    flow.choose("email")
    r = flow.verify(code="000000")
    assert r.status_code == 400
    reasons = [e.detail["reason"] for e in env.store.list_audit(event_prefix="reset.failed")]
    assert reasons == ["wrong_code", "wrong_answers"]


def test_an_expired_email_code_fails_and_a_new_one_works(env: ResetEnv) -> None:
    add_email(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    old = _email_code(env, "alice.private@example.test")
    env.browser.clock.advance(601)  # reset_email_ttl defaults to 600 seconds
    assert flow.verify(code=old).status_code == 400
    assert flow.post("verify", action="resend").status_code == 303
    new = _email_code(env, "alice.private@example.test")
    assert flow.verify(code=new).status_code == 303


def test_the_whole_flow_expires(env: ResetEnv) -> None:
    add_email(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    env.browser.clock.advance(901)
    r = flow.post("method", action="choose", choice="email")
    assert r.status_code == 400 and r.get_json()["page"] == "reset_expired"


def test_a_rejected_password_shows_the_reasons_and_keeps_nothing_typed(env: ResetEnv) -> None:
    add_email(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    flow.verify(code=_email_code(env, "alice.private@example.test"))
    flow.page(f"{RESET}/password")
    r = flow.post("password", action="password", password="short", confirm="short")
    assert r.status_code == 400
    assert r.get_json()["reasons"] == ["Use at least 12 characters."]
    html = env.browser.post(
        f"{RESET}/password",
        data={
            "csrf_token": flow.token,
            "action": "password",
            "password": "tiny1",
            "confirm": "tiny1",
        },
    )
    assert html.status_code == 400 and "tiny1" not in html.get_data(as_text=True)
    assert "Use at least 12 characters." in html.get_data(as_text=True)
    r = flow.new_password("long enough password", "long enough passwort")
    assert r.status_code == 400 and r.get_json()["errors"]["confirm"]
    _finish(env, flow)


def test_after_a_reset_sessions_are_dead_the_user_is_told_and_nothing_is_signed_in(
    env: ResetEnv,
) -> None:
    add_email(env.reg, "alice")
    other = env.new_browser()
    other.login("alice")
    assert location(other.authorize()).startswith("/security-info/wizard?c=")  # signed in
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    flow.verify(code=_email_code(env, "alice.private@example.test"))
    _finish(env, flow)
    # The old browser's middleware session is gone: /authorize goes back to the host's login.
    r = other.authorize()
    assert not location(r).startswith("/security-info/"), location(r)
    assert other.get_json("/security-info/").status_code == 401
    # The reset browser is not signed in either (no auto-login).
    assert env.browser.get_json("/security-info/").status_code == 401
    notices = [m for m in env.sender.emails if m.tag == "reset"]
    assert sorted(m.to for m in notices) == ["alice.private@example.test", "alice@example.test"]
    completed = env.store.list_audit(event_prefix="reset.completed")[0]
    assert completed.detail["sessions_revoked"] == 1


def test_questions_are_answered_in_their_own_form_fields_too(env2: ResetEnv) -> None:
    env = env2
    add_email(env.reg, "alice")
    answers = add_questions(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    page = flow.choose("questions")
    form = {f"answer{i}": answers[q] for i, q in enumerate(page["questions"])}
    r = env.browser.post(
        f"{RESET}/verify", data={"csrf_token": flow.token, "action": "verify", **form}
    )
    assert r.status_code == 303 and location(r) == f"{RESET}/method"
    assert ANSWERS[0] not in env.browser.get(f"{RESET}/method").get_data(as_text=True)

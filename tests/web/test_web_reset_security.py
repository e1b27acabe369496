"""Password reset: SECURITY.md cases 46-49 (enumeration, steps, single use, throttling, no session)."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pyotp
import pytest
from reset_helpers import (
    ANSWERS,
    RESET,
    Reset,
    ResetEnv,
    add_email,
    add_questions,
    add_totp,
    make_env,
)
from webtest import location

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.methods.questions import DEFAULT_QUESTIONS, QuestionAnswer
from oidc_combinedreg.notify import RESET_FLAG
from oidc_combinedreg.policy.reset import PASSWORD_RESET_REQUIRED

#: per-request tokens (the flow cookie, the CSRF token): 32 random bytes, base64url
_TOKENS = re.compile(r"[A-Za-z0-9_\-]{43}")


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    # bob is outside the SSPR policy; alice is in it and registered; "ghost" does not exist.
    e = make_env(
        tmp_path,
        clock,
        monkeypatch,
        sspr={"enabled_for": "selected", "groups": ["staff"]},
        groups={"alice": frozenset({"staff"})},
    )
    add_email(e.reg, "alice")
    add_email(e.reg, "bob")
    return e


def _scrub(text: str) -> str:
    return _TOKENS.sub("TOKEN", text)


def _named(env: ResetEnv, account: str, *, json: bool) -> tuple[str, str]:
    """What a stranger sees naming ``account``: the POST's answer, then the next page."""
    b = env.new_browser()
    flow = Reset(b)
    flow.page()
    if json:
        r = flow.post("account", action="account", account=account)
        nxt = b.get_json(location(r))
    else:
        r = b.post(RESET, data={"csrf_token": flow.token, "action": "account", "account": account})
        nxt = b.get(location(r))
    head = f"{r.status_code} {location(r)} {_scrub(';'.join(r.headers.getlist('Set-Cookie')))}"
    return _scrub(head + r.get_data(as_text=True)), _scrub(nxt.get_data(as_text=True))


@pytest.mark.parametrize("json", [pytest.param(False, id="html"), pytest.param(True, id="json")])
def test_existing_unknown_and_not_enabled_accounts_get_identical_responses(
    env: ResetEnv, json: bool
) -> None:
    seen = {name: _named(env, name, json=json) for name in ("alice", "bob", "ghost")}
    assert seen["alice"] == seen["bob"] == seen["ghost"]
    assert "email" in seen["ghost"][1]


def test_the_method_pages_are_the_same_for_unknown_accounts(env: ResetEnv) -> None:
    pages = []
    for name in ("alice", "ghost"):
        flow = Reset(env.new_browser())
        flow.start(name)
        pages.append(_scrub(flow.b.get(RESET + "/method").get_data(as_text=True)))
        r = flow.post("method", action="choose", choice="email")
        pages.append(_scrub(flow.b.get(location(r)).get_data(as_text=True)))
        pages.append(_scrub(flow.verify(code="123456").get_data(as_text=True)))
    assert pages[:3] == pages[3:]


def test_unknown_accounts_get_stable_pseudo_random_questions(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(tmp_path, clock, monkeypatch, required=2)
    asked = []
    for _ in range(3):
        flow = Reset(env.new_browser())
        flow.start("ghost")
        asked.append(tuple(flow.choose("questions")["questions"]))
    assert len(set(asked)) == 1 and len(asked[0]) == 3  # 3 to register, 3 to answer: always the set


def test_questions_users_wrote_are_asked_only_after_another_method(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A question of the user's own would show that the account exists (a decoy imitates only
    the predefined ones): the first chooser, the same for every account, has no questions, and
    choosing them is refused until another method proved the user."""
    env = make_env(tmp_path, clock, monkeypatch, required=2, questions={"allow_custom": True})
    add_email(env.reg, "alice")
    own = QuestionAnswer(question="The name of my first ferret?", answer="sir wiggles", custom=True)
    pairs = [own, *(QuestionAnswer(question=q, answer=a)
                    for q, a in zip(DEFAULT_QUESTIONS, ANSWERS[1:], strict=False))]  # fmt: skip
    env.reg.info.questions.register("alice", pairs, ip=None)
    answer_to = {p.question: p.answer for p in pairs}

    flow = Reset(env.browser)
    first = flow.start("alice")
    assert "questions" not in first["choices"] and "email" in first["choices"]
    assert Reset(env.new_browser()).start("ghost")["choices"] == first["choices"]
    r = flow.post("method", action="choose", choice="questions")
    assert r.status_code == 400
    assert own.question not in r.get_data(as_text=True)

    flow.choose("email")
    code = env.sender.last_code(to="alice.private@example.test")
    assert flow.verify(code=code).status_code == 303
    assert "questions" in flow.page(f"{RESET}/method")["choices"]
    asked = flow.choose("questions")["questions"]
    assert own.question in asked
    r = flow.verify(answers=[answer_to[q] for q in asked])
    assert r.status_code == 303 and location(r) == f"{RESET}/password"


def test_naming_an_account_takes_the_same_time_class_known_or_unknown(env: ResetEnv) -> None:
    samples: dict[str, list[float]] = {"alice": [], "ghost": []}
    for _ in range(15):
        for name in samples:  # interleaved, so drift hits both alike
            flow = Reset(env.new_browser())
            flow.page()
            t = time.perf_counter()
            r = flow.post("account", action="account", account=name)
            samples[name].append(time.perf_counter() - t)
            assert r.status_code == 303
        env.browser.clock.advance(301)  # a new throttle window: every sample does the same work
    known, unknown = (statistics.median(v) for v in samples.values())
    # A generous ratio, never wall time: the same class of work (one directory and store lookup).
    assert 1 / 3 < known / unknown < 3, (known, unknown)


def test_an_owner_who_cannot_reset_is_told_by_email_not_on_the_page(env: ResetEnv) -> None:
    flow = Reset(env.browser)
    flow.start("bob")
    flow.choose("email")
    tags = [(m.to, m.tag) for m in env.sender.emails]
    assert ("bob@example.test", "reset_unavailable") in tags
    assert not any(tag == "code" for _, tag in tags)
    flow2 = Reset(env.new_browser())
    flow2.start("bob")
    flow2.choose("email")
    assert sum(1 for m in env.sender.emails if m.tag == "reset_unavailable") == 2  # once an hour
    # (two recipients: the registered address and the directory's)


def test_steps_cannot_be_skipped_or_reordered(env: ResetEnv) -> None:
    flow = Reset(env.browser)
    flow.page()
    r = flow.new_password("a brand new password")
    assert r.status_code == 409
    flow.start("alice")
    assert location(env.browser.get(RESET + "/password")) == RESET + "/method"
    r = flow.new_password("a brand new password")
    assert r.status_code == 409 and r.get_json()["page"] == "reset_out_of_order"
    r = flow.verify(code="123456")
    assert r.status_code == 409
    failures = [e.detail["reason"] for e in env.store.list_audit(event_prefix="reset.failed")]
    assert failures.count("out_of_order") == 3
    assert location(env.browser.get(RESET + "/nowhere")) == ""


def test_a_flow_token_is_single_use(env: ResetEnv) -> None:
    flow = Reset(env.browser)
    flow.start("alice")
    old_cookie = env.browser.client.get_cookie("combinedreg-reset")
    assert old_cookie is not None
    flow.choose("email")
    # Replaying the used token (an old cookie) finds nothing.
    other = env.new_browser()
    other.client.set_cookie("combinedreg-reset", old_cookie.value)
    r = other.post_json(RESET + "/method", {"csrf_token": flow.token, "choice": "email"})
    assert r.status_code == 400 and r.get_json()["page"] == "reset_expired"


def test_csrf_is_required_and_cross_site_posts_are_refused(env: ResetEnv) -> None:
    flow = Reset(env.browser)
    flow.page()
    r = env.browser.post_json(RESET, {"action": "account", "account": "alice"})
    assert r.status_code == 403
    flow.page()
    r = env.browser.post_json(
        RESET,
        {"action": "account", "account": "alice", "csrf_token": flow.token},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403


def test_the_reset_flow_never_gives_a_session_for_security_info(env: ResetEnv) -> None:
    secret = add_totp(env.reg, "alice")
    env.browser.clock.advance(30)
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("app_code")
    flow.verify(code=pyotp.TOTP(secret).at(env.browser.clock.now()))
    assert flow.page(RESET + "/password")["page"] == "reset_password"
    for url in ("/security-info/", "/security-info/add/totp", "/security-info/mfa"):
        assert env.browser.get_json(url).status_code == 401, url


def test_throttled_per_account_and_ip_without_locking_sign_in(env: ResetEnv) -> None:
    add_questions(env.reg, "alice")
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("email")
    statuses = [flow.verify(code="000000").status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429
    # The sign-in's consecutive-failure counter is untouched: MFA at sign-in still works.
    assert env.store.get_count("fail:user:alice:consecutive") == 0
    env.browser.clock.advance(301)
    assert flow.verify(code="000000").status_code == 400  # the window passed: no lockout


def test_an_app_code_resets_past_the_sign_in_limits_and_leaves_their_counts(
    env: ResetEnv,
) -> None:
    """The sign-in's failure counts neither refuse a reset code nor are cleared by one (case
    49): the reset flow throttles itself, under its own keys."""
    secret = add_totp(env.reg, "alice")
    env.browser.clock.advance(30)
    signin_failures = [("fail:user:alice:window", 300.0), ("fail:user:alice:consecutive", None)]
    for _ in range(20):  # past the window's limit, short of the lockout
        env.store.counters(incr=signin_failures)
    before = env.store.counters(read=["fail:user:alice:consecutive", "fail:user:alice:window"])
    flow = Reset(env.browser)
    flow.start("alice")
    flow.choose("app_code")
    flow.verify(code=pyotp.TOTP(secret).at(env.browser.clock.now()))
    assert flow.page(RESET + "/password")["page"] == "reset_password"
    after = env.store.counters(read=["fail:user:alice:consecutive", "fail:user:alice:window"])
    assert after == before == [20, 20]


def test_many_accounts_from_one_ip_are_throttled(env: ResetEnv) -> None:
    codes = []
    for i in range(52):
        b = env.new_browser()
        flow = Reset(b)
        flow.page()
        codes.append(flow.post("account", action="account", account=f"user{i}").status_code)
    assert codes[:50] == [303] * 50 and codes[50:] == [429, 429]


def test_this_wasnt_me_sends_the_next_sign_in_to_reset_and_a_reset_clears_it(
    env: ResetEnv,
) -> None:
    assert RESET_FLAG == PASSWORD_RESET_REQUIRED
    state = env.store.get_user_state("alice")
    env.store.put_user_state(replace(state, extra={RESET_FLAG: True}))
    env.browser.login("alice")
    r = env.browser.authorize()
    assert location(r) == RESET
    assert "code=" not in location(r)
    flow = Reset(env.new_browser())
    flow.start("alice")
    flow.choose("email")
    flow.verify(code=env.sender.last_code(to="alice.private@example.test"))
    flow.page(RESET + "/password")
    assert flow.new_password("a brand new password").status_code == 200
    assert RESET_FLAG not in env.store.get_user_state("alice").extra
    b = env.new_browser()
    b.login("alice", "a brand new password")
    assert location(b.authorize()) != RESET

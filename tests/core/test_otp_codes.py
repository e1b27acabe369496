"""Out-of-band codes: format, expiry, reuse, wrong codes, resend cool-down, send quotas, lockout.

SECURITY.md cases 32 (6 CSPRNG digits, 10 minutes, single use, resend keeps the failure count),
33 (send quotas per user, IP and number) and 35 (stored hashed, never logged).
"""

from __future__ import annotations

import json
import re

import pytest
from codes_env import T0, Env, make_env

from oidc_combinedreg.crypto import CodeHasher
from oidc_combinedreg.exceptions import (
    ChallengeExpired,
    InvalidInput,
    RateLimited,
    VerificationFailed,
)
from oidc_combinedreg.methods.otp_codes import CodePolicy, Purpose, check_code, issue_code
from oidc_combinedreg.store.base import MethodRecord

HASHER = CodeHasher(b"p" * 32)
POLICY = CodePolicy()
NUMBER = "+14155550123"


def _issue(now: float = T0, **kw: object) -> tuple[str, object]:
    args: dict[str, object] = dict(
        policy=POLICY,
        hasher=HASHER,
        user_id="alice",
        purpose=Purpose.MFA,
        channel="sms",
        destination=NUMBER,
        now=now,
    )
    args.update(kw)
    return issue_code(**args)  # type: ignore[arg-type]


def _check(challenge: object, code: object, now: float = T0, **kw: object) -> None:
    args: dict[str, object] = dict(
        policy=POLICY, hasher=HASHER, user_id="alice", purpose=Purpose.MFA, now=now
    )
    args.update(kw)
    check_code(challenge, code, **args)  # type: ignore[arg-type]


# -- the pure core --------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [6, 7, 8])
def test_codes_have_the_configured_number_of_digits_and_vary(digits: int) -> None:
    policy = CodePolicy(digits=digits)
    codes = {
        issue_code(
            policy=policy,
            hasher=HASHER,
            user_id="a",
            purpose=Purpose.MFA,
            channel="sms",
            destination=NUMBER,
            now=T0,
        )[0]
        for _ in range(50)
    }
    assert all(re.fullmatch(f"[0-9]{{{digits}}}", c) for c in codes)
    assert len(codes) > 45  # CSPRNG: 50 draws from 10^6+ values almost never repeat


def test_the_challenge_holds_a_hash_never_the_code() -> None:
    code, challenge = _issue()
    assert code not in json.dumps(challenge.to_dict())  # type: ignore[attr-defined]


def test_the_right_code_passes_within_ten_minutes() -> None:
    code, challenge = _issue()
    _check(challenge, code, now=T0 + 599)


@pytest.mark.parametrize(
    ("change", "exc"),
    [
        pytest.param({"now": T0 + 600}, ChallengeExpired, id="at ten minutes the code has expired"),
        pytest.param({"user_id": "mallory"}, ChallengeExpired, id="another user cannot use it"),
        pytest.param(
            {"purpose": Purpose.RESET}, ChallengeExpired, id="an mfa code is no reset code"
        ),
    ],
)
def test_a_code_is_bound_to_its_user_purpose_and_lifetime(
    change: dict[str, object], exc: type[Exception]
) -> None:
    code, challenge = _issue()
    with pytest.raises(exc):
        _check(challenge, code, **change)


@pytest.mark.parametrize(
    ("typed", "exc"),
    [
        pytest.param("000000", VerificationFailed, id="a wrong code fails"),
        pytest.param("", InvalidInput, id="empty is invalid"),
        pytest.param("12345", InvalidInput, id="five digits are invalid"),
        pytest.param("１２３４５６", InvalidInput, id="full-width digits are invalid"),
        pytest.param(" 123456", InvalidInput, id="padding is invalid"),
        pytest.param("x" * 10_000, InvalidInput, id="a huge value is invalid"),
        pytest.param(None, InvalidInput, id="a missing value is invalid"),
    ],
)
def test_wrong_and_malformed_codes(typed: object, exc: type[Exception]) -> None:
    code, challenge = _issue()
    if typed == "000000" and code == "000000":
        typed = "000001"
    with pytest.raises(exc):
        _check(challenge, typed)


def test_a_resend_during_the_cool_down_is_refused_with_the_wait() -> None:
    _, first = _issue()
    with pytest.raises(RateLimited) as caught:
        _issue(now=T0 + 20, previous=first)
    assert caught.value.scope == "resend" and caught.value.retry_after == 40


def test_a_resend_replaces_the_code_under_the_same_challenge() -> None:
    old, first = _issue()
    new, second = _issue(now=T0 + 60, previous=first)
    assert second.id == first.id and second.sends == 2  # type: ignore[attr-defined]
    if old != new:
        with pytest.raises(VerificationFailed):
            _check(second, old, now=T0 + 61)
    _check(second, new, now=T0 + 61)


# -- through the service and the store -------------------------------------------------------------


@pytest.fixture
def env() -> Env:
    return make_env()


def _phone(env: Env) -> MethodRecord:
    sent, state = env.info.mobile_phone.register_begin(
        "alice", number="415 555 0123", region="US", channel="sms", ip="198.51.100.7"
    )
    record = env.info.mobile_phone.register_complete(
        "alice", state, env.sender.last_code(NUMBER), ip="198.51.100.7"
    )
    env.clock.advance(3600)
    env.store.reset_count("send:user:alice")
    return record


def test_a_code_is_single_use(env: Env) -> None:
    record = _phone(env)
    svc = env.info.mobile_phone
    _, state = svc.send_code("alice", record, Purpose.MFA, channel="sms", ip=None)
    code = env.sender.last_code(NUMBER)
    assert svc.check_code("alice", record, state, code, Purpose.MFA, ip=None) == ("sms",)
    with pytest.raises(ChallengeExpired):
        svc.check_code("alice", record, state, code, Purpose.MFA, ip=None)


def test_an_expired_code_is_refused_by_the_service(env: Env) -> None:
    record = _phone(env)
    svc = env.info.mobile_phone
    _, state = svc.send_code("alice", record, Purpose.MFA, channel="sms", ip=None)
    env.clock.advance(601)
    with pytest.raises(ChallengeExpired):
        svc.check_code("alice", record, state, env.sender.last_code(NUMBER), Purpose.MFA, ip=None)


def test_a_resend_keeps_the_failure_count(env: Env) -> None:
    record = _phone(env)
    svc = env.info.mobile_phone
    _, state = svc.send_code("alice", record, Purpose.MFA, channel="sms", ip=None)
    wrong = "000000" if env.sender.last_code(NUMBER) != "000000" else "111111"
    for _ in range(3):
        with pytest.raises(VerificationFailed):
            svc.check_code("alice", record, state, wrong, Purpose.MFA, ip=None)
    env.clock.advance(60)
    _, state2 = svc.send_code("alice", record, Purpose.MFA, channel="voice", ip=None, state=state)
    assert state2["challenge"] == state["challenge"]
    assert env.store.get_count("fail:user:alice:consecutive") == 3
    # The call replaced the text: the texted code no longer works, the spoken one does.
    assert svc.check_code(
        "alice", record, state2, env.sender.last_code(NUMBER), Purpose.MFA, ip=None
    ) == ("tel",)


def test_two_parallel_checks_of_one_code_cannot_both_pass(env: Env) -> None:
    record = _phone(env)
    svc = env.info.mobile_phone
    _, state = svc.send_code("alice", record, Purpose.MFA, channel="sms", ip=None)
    code = env.sender.last_code(NUMBER)
    # The first request read the challenge; a second one takes it before the first does.
    env.store.take_challenge(f"otp:{state['challenge']}")
    with pytest.raises(ChallengeExpired):
        svc.check_code("alice", record, state, code, Purpose.MFA, ip=None)


@pytest.mark.parametrize(
    ("setting", "scope"),
    [
        pytest.param({"sends_per_user": 2}, "send-user", id="per user"),
        pytest.param({"sends_per_destination": 2}, "send-destination", id="per number"),
        pytest.param({"sends_per_ip": 2}, "send-ip", id="per client ip"),
    ],
)
def test_send_quotas_stop_the_third_send_in_an_hour(setting: dict[str, int], scope: str) -> None:
    env = make_env(delivery={"codes": setting})
    svc = env.info.mobile_phone
    for _ in range(2):
        svc.register_begin(
            "alice", number="4155550123", region="US", channel="sms", ip="203.0.113.5"
        )
        env.clock.advance(61)
    with pytest.raises(RateLimited) as caught:
        svc.register_begin(
            "alice", number="4155550123", region="US", channel="sms", ip="203.0.113.5"
        )
    assert caught.value.scope == scope
    assert len(env.sender.texts) == 2
    env.clock.advance(3600)
    svc.register_begin("alice", number="4155550123", region="US", channel="sms", ip="203.0.113.5")
    assert len(env.sender.texts) == 3


def test_the_destination_quota_holds_across_users() -> None:
    env = make_env(delivery={"codes": {"sends_per_destination": 1}})
    env.info.mobile_phone.register_begin(
        "alice", number="4155550123", region="US", channel="sms", ip=None
    )
    with pytest.raises(RateLimited):
        env.info.mobile_phone.register_begin(
            "bob", number="+1 415 555 0123", region="US", channel="sms", ip=None
        )


def test_a_hundred_consecutive_failures_lock_codes_for_the_account() -> None:
    # A wide per-window limit, so only the durable consecutive count (NIST's 100) is in play.
    env = make_env(throttle={"failures_per_window": 1000, "ip_failures_per_window": 1000})
    record = _phone(env)
    svc = env.info.mobile_phone
    _, state = svc.send_code("alice", record, Purpose.MFA, channel="sms", ip="192.0.2.1")
    code = env.sender.last_code(NUMBER)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(100):
        with pytest.raises(VerificationFailed):
            svc.check_code("alice", record, state, wrong, Purpose.MFA, ip="192.0.2.1")
    with pytest.raises(RateLimited) as caught:
        svc.check_code("alice", record, state, code, Purpose.MFA, ip="192.0.2.1")
    assert caught.value.scope == "account-locked"
    # Another account is not affected.
    assert env.store.get_count("fail:user:bob:consecutive") == 0


def test_codes_never_reach_the_audit_log_or_the_store_in_clear(env: Env) -> None:
    record = _phone(env)
    _, state = env.info.mobile_phone.send_code("alice", record, Purpose.MFA, channel="sms", ip=None)
    code = env.sender.last_code(NUMBER)
    stored = json.dumps(env.store.peek_challenge(f"otp:{state['challenge']}"))
    audit = repr(env.store.list_audit(limit=1000))
    assert code not in stored and code not in audit


# -- SECURITY.md case 58: anonymous reset sends have a budget of their own -------------------

OFFICE = "+14155550199"


def _office_call(env: Env, purpose: Purpose, ip: str) -> None:
    record = env.info.office_phone.directory_record("alice")
    assert record is not None
    env.info.office_phone.send_code("alice", record, purpose, channel="voice", ip=ip)
    env.clock.advance(61)


def test_reset_calls_do_not_use_up_the_owners_mfa_calls() -> None:
    """Five anonymous reset flows call alice's office phone; her own MFA call still goes out."""
    env = make_env(office_phone=OFFICE)
    reset_budget = CodePolicy().reset_sends_per_destination
    for n in range(reset_budget):
        _office_call(env, Purpose.RESET, ip=f"203.0.113.{n}")
    with pytest.raises(RateLimited) as caught:
        _office_call(env, Purpose.RESET, ip="203.0.113.99")
    assert caught.value.scope == "reset-send-destination"
    assert len(env.sender.calls) == reset_budget
    refused = env.store.list_audit(event_prefix="code.send_refused")[0]
    assert refused.user_id == "alice" and refused.detail["scope"] == "reset-send-destination"
    assert refused.detail["purpose"] == "reset" and refused.detail["channel"] == "voice"
    assert OFFICE not in repr(refused)
    for _ in range(CodePolicy().sends_per_destination):  # the owner's own MFA budget is whole
        _office_call(env, Purpose.MFA, ip="192.0.2.10")
    assert len(env.sender.calls) == reset_budget + CodePolicy().sends_per_destination


def test_calls_to_one_number_are_bounded_per_hour_across_flows() -> None:
    """Reset, registration and MFA together place a bounded number of calls to one number."""
    env = make_env(office_phone=OFFICE)
    policy = CodePolicy()
    placed = 0
    for purpose in (Purpose.RESET, Purpose.MFA):
        for n in range(20):
            try:
                _office_call(env, purpose, ip=f"198.51.100.{n}")
                placed += 1
            except RateLimited:
                pass
    assert placed == policy.reset_sends_per_destination + policy.sends_per_destination
    env.clock.advance(3600)
    _office_call(env, Purpose.RESET, ip="198.51.100.1")  # an hour later: a new budget


def test_registering_someone_elses_number_does_not_use_up_their_mfa_sends() -> None:
    """bob (signed in) types alice's office number into his registration five times."""
    env = make_env(office_phone=OFFICE)
    for _ in range(CodePolicy().sends_per_destination):
        env.info.mobile_phone.register_begin(
            "bob", number=OFFICE, region="US", channel="voice", ip="198.51.100.9"
        )
        env.clock.advance(61)
    _office_call(env, Purpose.MFA, ip="192.0.2.10")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("reset_sends_per_destination", 0, "reset_sends_per_destination: expected an integer"),
        ("reset_sends_per_user", "five", "reset_sends_per_user: expected an integer"),
        ("reset_sends_per_ip", 10**9, "reset_sends_per_ip: expected an integer"),
    ],
)
def test_reset_send_budgets_are_validated(key: str, value: object, message: str) -> None:
    from oidc_combinedreg.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_env(delivery={"codes": {key: value}})
    assert f"delivery.codes.{message}" in str(caught.value)
    make_env(delivery={"codes": {key: 3}})  # a sound value is accepted

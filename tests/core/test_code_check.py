"""The MFA check of a typed one-time code (``ServiceContext.check_code``), through the TOTP service:
the attempt counted first, the success stored with its event and clearing the account's failure
counts in one store call, replays and failures counted and audited."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from codes_env import T0, Env, UnserializedMemoryStore, make_env

from oidc_combinedreg.exceptions import CodeReused, RateLimited, VerificationFailed
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.service.base import secret_context
from oidc_combinedreg.store.base import MethodRecord

IP = "192.0.2.7"
SECRET = pyotp.random_base32(32)


@pytest.fixture(
    params=[True, False],
    ids=["serialized store (SQLite, memory): counters read", "Redis-like: attempt counted first"],
)
def env(request: pytest.FixtureRequest) -> Env:
    return make_env(
        throttle={"failures_per_window": 3, "max_consecutive_failures": 10},
        serialized=request.param,
    )


def app(env: Env) -> MethodRecord:
    record = MethodRecord(
        id="m1", user_id="alice", kind=MethodKind.TOTP, label="Phone", created_at=T0,
        data={"issuer": "Contoso"}, counter=0,
        secret=env.info.ctx.box.encrypt(SECRET.encode(), context=secret_context("alice", "m1")),
    )  # fmt: skip
    env.store.add_method(record, limit=5)
    return record


def counts(env: Env) -> list[int]:
    return env.store.counters(
        read=["fail:user:alice:consecutive", "fail:user:alice:window", f"fail:ip:{IP}"]
    )


def wrong_code(env: Env, record: MethodRecord) -> None:
    right = pyotp.TOTP(SECRET).at(env.clock.now())
    with pytest.raises(VerificationFailed):
        env.info.totp.verify_code(
            "alice", record, "000000" if right != "000000" else "111111", ip=IP
        )


def test_a_right_code_after_failures_clears_the_account_counts_but_not_the_address(
    env: Env,
) -> None:
    record = app(env)
    wrong_code(env, record)
    wrong_code(env, record)
    assert counts(env) == [2, 2, 2]
    step = env.info.totp.verify_code("alice", record, pyotp.TOTP(SECRET).at(T0), ip=IP)
    assert step == int(T0) // 30
    assert counts(env) == [0, 0, 2]
    stored = env.store.get_method("alice", "m1")
    assert stored is not None and stored.counter == step and stored.last_used_at == T0
    events = [(e.event, e.outcome, e.detail.get("reason")) for e in env.store.list_audit()]
    assert events[0] == ("mfa.succeeded", "success", None)
    assert events[1:] == [("mfa.failed", "failure", "code")] * 2


def test_a_replayed_code_is_refused_counted_and_audited(env: Env) -> None:
    record = app(env)
    code = pyotp.TOTP(SECRET).at(T0)
    env.info.totp.verify_code("alice", record, code, ip=IP)
    # The stale record (counter 0) still carries the old hint: the store's compare-and-set refuses.
    with pytest.raises(CodeReused):
        env.info.totp.verify_code("alice", record, code, ip=IP)
    assert counts(env) == [1, 1, 1]
    latest = env.store.list_audit()[0]
    assert (latest.event, latest.detail["reason"]) == ("mfa.failed", "replay")


def test_past_the_limit_a_right_code_is_refused_and_its_step_stays_unused(env: Env) -> None:
    record = app(env)
    for _ in range(3):
        wrong_code(env, record)
    with pytest.raises(RateLimited):
        env.info.totp.verify_code("alice", record, pyotp.TOTP(SECRET).at(T0), ip=IP)
    stored = env.store.get_method("alice", "m1")
    assert stored is not None and stored.counter == 0, "the step was not used"
    assert [e.event for e in env.store.list_audit()].count("mfa.succeeded") == 0


def test_a_clean_success_writes_counters_only_where_calls_are_not_serialized(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a serialized transaction the attempt is read, not counted: a success with no
    failures before it writes no counter (one store write less per sign-in). Elsewhere the
    attempt is counted first and cleared with the success."""
    record = app(env)
    writes: list[list[str]] = []
    real = env.store.counters

    def counters(**kwargs: Any) -> list[int]:
        if kwargs.get("incr") or kwargs.get("reset"):
            writes.append(
                [key for key, _ in kwargs.get("incr", [])] + list(kwargs.get("reset", []))
            )
        return real(**kwargs)

    monkeypatch.setattr(env.store, "counters", counters)
    env.info.totp.verify_code("alice", record, pyotp.TOTP(SECRET).at(T0), ip=IP)
    if not isinstance(env.store, UnserializedMemoryStore):
        assert writes == []
    else:
        assert writes == [["fail:user:alice:consecutive", "fail:user:alice:window"]]
    assert counts(env) == [0, 0, 0]


def test_a_failure_inside_a_serialized_check_counts_the_account_and_the_address(env: Env) -> None:
    record = app(env)
    wrong_code(env, record)
    assert counts(env) == [1, 1, 1]

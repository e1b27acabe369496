"""The code throttle: attempts counted before the check, lockout, cool-down, per-IP failures."""

from __future__ import annotations

import pytest

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config.model import ThrottleConfig
from oidc_combinedreg.exceptions import RateLimited
from oidc_combinedreg.store import MemoryStore
from oidc_combinedreg.throttle import Throttle

CONFIG = ThrottleConfig(
    max_consecutive_failures=5, failures_per_window=3, ip_failures_per_window=4, window=60
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000.0)


@pytest.fixture
def store(clock: FrozenClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def throttle(store: MemoryStore) -> Throttle:
    return Throttle(store, CONFIG)


def fail(
    throttle: Throttle, times: int, *, user: str = "alice", ip: str | None = "10.0.0.1"
) -> None:
    for _ in range(times):
        throttle.attempt(user, ip)
        throttle.failed(user, ip)


def scope_of(throttle: Throttle, user: str = "alice", ip: str | None = "10.0.0.1") -> str | None:
    try:
        throttle.attempt(user, ip)
    except RateLimited as exc:
        return exc.scope
    return None


def test_attempts_within_the_window_limit_pass(throttle: Throttle) -> None:
    fail(throttle, 2)
    assert scope_of(throttle) is None, "the third attempt is still allowed"


def test_an_attempt_is_counted_before_the_code_is_checked(
    throttle: Throttle, store: MemoryStore
) -> None:
    throttle.attempt("alice", None)
    assert store.get_count("fail:user:alice:consecutive") == 1
    assert store.get_count("fail:user:alice:window") == 1


def test_the_window_limit_cools_the_account_down_until_the_window_ends(
    throttle: Throttle, clock: FrozenClock
) -> None:
    fail(throttle, 3, ip=None)
    assert scope_of(throttle, ip=None) == "user"
    clock.advance(60)
    assert scope_of(throttle, ip=None) is None


def test_consecutive_failures_lock_the_account_across_windows(
    throttle: Throttle, clock: FrozenClock
) -> None:
    for _ in range(2):
        fail(throttle, 2, ip=None)
        clock.advance(60)
    fail(throttle, 1, ip=None)
    assert scope_of(throttle, ip=None) == "account-locked"
    clock.advance(3600)
    assert scope_of(throttle, ip=None) == "account-locked", "durable: no window lifts it"


def test_a_success_clears_the_account_counters(throttle: Throttle, store: MemoryStore) -> None:
    fail(throttle, 2)
    throttle.attempt("alice", "10.0.0.1")
    throttle.succeeded("alice")
    assert store.get_count("fail:user:alice:consecutive") == 0
    assert store.get_count("fail:user:alice:window") == 0
    assert store.get_count("fail:ip:10.0.0.1") == 2, "the address keeps its failures"


def test_failures_from_one_address_over_many_accounts_block_the_address(
    throttle: Throttle,
) -> None:
    for user in ("a", "b", "c", "d"):
        fail(throttle, 1, user=user)
    assert scope_of(throttle, user="e") == "ip"
    assert scope_of(throttle, user="e", ip="10.0.0.2") is None, "another address still may"


def test_successes_do_not_count_against_the_address(throttle: Throttle, store: MemoryStore) -> None:
    for user in ("a", "b", "c", "d", "e"):
        throttle.attempt(user, "10.0.0.1")
        throttle.succeeded(user)
    assert store.get_count("fail:ip:10.0.0.1") == 0
    assert scope_of(throttle, user="f") is None

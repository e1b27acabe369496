"""Redis only: limits, single-use TOTP steps and counters hold under 50 parallel requests.

SECURITY.md 23 and 56: two tabs (here fifty) registering the sixth authenticator app store none;
the same TOTP code from many sessions succeeds once; parallel failed attempts are all counted.
"""

from __future__ import annotations

from store_helpers import T0, event, method, race

from oidc_combinedreg.exceptions import LimitReached
from oidc_combinedreg.store.redis import RedisStore

N = 50


def test_fifty_parallel_adds_of_a_sixth_authenticator_app_store_none(
    redis_store: RedisStore,
) -> None:
    for _ in range(5):
        redis_store.add_method(method(), limit=5)
    results = race(N, lambda i: redis_store.add_method(method(), limit=5, events=[event()]))
    assert all(isinstance(r, LimitReached) for r in results), results
    assert len(redis_store.list_methods("alice")) == 5
    assert redis_store.list_audit() == [], "no 'added' event for a refused add"


def test_fifty_parallel_adds_from_empty_store_exactly_the_limit(redis_store: RedisStore) -> None:
    results = race(N, lambda i: redis_store.add_method(method(), limit=5, events=[event()]))
    assert sum(r is None for r in results) == 5
    assert sum(isinstance(r, LimitReached) for r in results) == N - 5
    assert len(redis_store.list_methods("alice")) == 5
    assert len(redis_store.list_audit()) == 5


def test_fifty_sessions_submitting_the_same_totp_step_exactly_one_wins(
    redis_store: RedisStore,
) -> None:
    record = method(counter=56_666_665)
    redis_store.add_method(record, limit=5)
    results = race(N, lambda i: redis_store.advance_counter("alice", record.id, 56_666_666, T0))
    assert results.count(True) == 1
    assert results.count(False) == N - 1
    stored = redis_store.get_method("alice", record.id)
    assert stored is not None and stored.counter == 56_666_666


def test_fifty_parallel_failed_attempts_are_each_counted(redis_store: RedisStore) -> None:
    results = race(N, lambda i: redis_store.incr("fail:alice", ttl=900))
    assert sorted(r for r in results if isinstance(r, int)) == list(range(1, N + 1))
    assert redis_store.get_count("fail:alice") == N


def test_fifty_parallel_takes_of_one_challenge_exactly_one_gets_it(
    redis_store: RedisStore,
) -> None:
    redis_store.put_challenge("webauthn:alice", {"challenge": "c"}, ttl=300)
    results = race(N, lambda i: redis_store.take_challenge("webauthn:alice"))
    assert results.count({"challenge": "c"}) == 1
    assert results.count(None) == N - 1

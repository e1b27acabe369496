"""Redis only: limits, single-use TOTP steps and counters hold under 50 parallel requests.

SECURITY.md 23 and 56: two tabs (here fifty) registering the sixth authenticator app store none;
the same TOTP code from many sessions succeeds once; parallel failed attempts are all counted;
two parallel deletes cannot both pass "replace before remove".
"""

from __future__ import annotations

from store_helpers import T0, event, method, race

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config import parse_config
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.exceptions import LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.policy.compliance import ReplaceFirst
from oidc_combinedreg.service import SecurityInfo
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


class _Alice:
    def get_user(self, user_id: str) -> DirectoryUser | None:
        return DirectoryUser(id="alice") if user_id == "alice" else None


def test_two_parallel_deletes_cannot_both_pass_replace_before_remove(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    """MFA registration is enforced and alice has two authenticator apps: deleting either alone
    is allowed, both would leave her none. Each delete checks, then deletes in another round
    trip; the store deletes only if her methods are still the ones the check read, so of two
    parallel deletes one goes through and the other, checked again, is refused."""
    config = parse_config({
        "general": {"organization": "Contoso", "environment": "development"},
        "secrets": {"encryption_keys": [generate_key()]},
        "policies": {"mfa_registration": {"enforced": True}},
    })  # fmt: skip
    info = SecurityInfo(config=config, store=redis_store, clock=clock, directory=_Alice(),
                        delivery=RecordingSender().delivery())  # fmt: skip
    apps = [method(kind=MethodKind.TOTP, label=f"app {i}") for i in range(2)]
    for _ in range(10):  # each round starts from the two apps again
        for app in apps:
            if redis_store.get_method("alice", app.id) is None:
                redis_store.add_method(app, limit=5)
        results = race(2, lambda i: info.delete_method("alice", apps[i].id, ip=None))
        assert sorted(type(r).__name__ for r in results) == ["ReplaceFirst", "bool"], results
        assert results.count(True) == 1
        assert isinstance(next(r for r in results if r is not True), ReplaceFirst)
        assert len(redis_store.list_methods("alice")) == 1

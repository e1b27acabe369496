"""Redis only: key layout and hash tags, lookup claims, TTLs, audit retention, the cluster outbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot
from redis_servers import RedisCluster3, RedisServer
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import InvalidInput, LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import UserState
from oidc_combinedreg.store.redis import RedisStore


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


@pytest.fixture
def single(redis_server: RedisServer, clock: FrozenClock) -> Iterator[RedisStore]:
    """A store on the one-server Redis (flushed) for tests that look at raw keys."""
    redis_server.flush()
    store = RedisStore.from_url(redis_server.url, clock=clock)
    yield store
    store.close()


# -- key layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param("alice", id="a plain user id"),
        pytest.param("a}b{c:d", id="a user id with braces and colons"),
    ],
)
def test_every_key_of_one_user_is_in_one_cluster_slot(
    single: RedisStore, raw: redis.Redis, user_id: str
) -> None:
    single.add_method(method(user_id, lookup="cred-1"), limit=5, events=[event(user_id=user_id)])
    single.add_method(method(user_id, kind=MethodKind.EMAIL), limit=1)
    single.put_user_state(UserState(user_id=user_id, skips_used=1))
    single.save_session("sid-1", {"n": 1}, user_id=user_id, ttl=60)
    tagged = [k for k in raw.scan_iter(match="creg:{u:*") if user_id.encode() in k]
    assert len(tagged) == 5, tagged  # index, two methods, state, session index
    assert len({key_slot(k) for k in tagged}) == 1
    assert single.list_user_ids() == [user_id]


def test_two_key_prefixes_on_one_redis_do_not_see_each_other(
    redis_server: RedisServer, single: RedisStore, clock: FrozenClock
) -> None:
    other = RedisStore.from_url(redis_server.url, clock=clock, key_prefix="staging")
    try:
        other.add_method(method(), limit=5)
        other.incr("k", ttl=None)
        assert single.list_methods("alice") == [] and single.get_count("k") == 0
        assert single.list_user_ids() == [] and other.list_user_ids() == ["alice"]
    finally:
        other.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"decode_responses": True}, "decode_responses", id="a decoding client"),
        pytest.param({"prefix": "a{b}"}, "hash tags", id="a prefix with a hash tag"),
    ],
)
def test_misconfiguration_is_refused_at_construction(
    redis_server: RedisServer, clock: FrozenClock, kwargs: dict[str, object], message: str
) -> None:
    prefix = str(kwargs.pop("prefix", "creg"))
    with redis.Redis(port=redis_server.port, **kwargs) as client:  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=message):
            RedisStore(client, clock=clock, key_prefix=prefix)


def test_counters_beyond_two_to_the_53_compare_exactly(redis_store: RedisStore) -> None:
    record = method(counter=2**60)
    redis_store.add_method(record, limit=5)
    assert redis_store.advance_counter("alice", record.id, 2**60 + 1, T0) is True
    assert redis_store.advance_counter("alice", record.id, 2**60 + 1, T0) is False
    stored = redis_store.get_method("alice", record.id)
    assert stored is not None and stored.counter == 2**60 + 1


# -- lookup claims --------------------------------------------------------------------------------


def test_a_claim_left_by_a_crashed_add_is_taken_over_after_the_grace(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    # What a process leaves when it dies between claiming "SN1" and inserting its method.
    redis_store._run("CLAIM_CREATE", ["creg:lookup:SN1"], ["ghost", "m-never", repr(clock.now())])
    late = method("bob", kind=MethodKind.HARDWARE_OATH, lookup="SN1")
    with pytest.raises(InvalidInput):
        redis_store.add_method(late, limit=5)
    assert redis_store.find_method_by_lookup("SN1") is None
    clock.advance(61)
    redis_store.add_method(late, limit=5)
    assert redis_store.find_method_by_lookup("SN1") == late


def test_a_claim_whose_method_exists_is_never_taken_over(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    redis_store.add_method(method(kind=MethodKind.WEBAUTHN, lookup="cred-1"), limit=10)
    clock.advance(365 * 86400)
    with pytest.raises(InvalidInput):
        redis_store.add_method(method("bob", kind=MethodKind.WEBAUTHN, lookup="cred-1"), limit=10)


def test_an_add_refused_by_the_limit_releases_its_claim(redis_store: RedisStore) -> None:
    redis_store.add_method(method(kind=MethodKind.HARDWARE_OATH), limit=1)
    with pytest.raises(LimitReached):
        redis_store.add_method(method(kind=MethodKind.HARDWARE_OATH, lookup="SN1"), limit=1)
    redis_store.add_method(method("bob", kind=MethodKind.HARDWARE_OATH, lookup="SN1"), limit=1)
    found = redis_store.find_method_by_lookup("SN1")
    assert found is not None and found.user_id == "bob"


# -- TTLs: the clock decides, Redis cleans up -----------------------------------------------------


def test_ephemeral_keys_carry_ttls_and_durable_ones_do_not(
    single: RedisStore, raw: redis.Redis, clock: FrozenClock
) -> None:
    single.save_session("sid-1", {}, user_id="alice", ttl=600)
    single.put_challenge("c1", {}, ttl=300)
    single.incr("ip:1.2.3.4", ttl=60)
    single.incr("fail:alice", ttl=None)
    single.add_method(method(), limit=5)
    assert 0 < raw.pttl("creg:session:sid-1") <= 600_000
    assert 0 < raw.pttl("creg:{u:alice}:sessions") <= 600_000
    assert 0 < raw.pttl("creg:challenge:c1") <= 300_000
    assert 0 < raw.pttl("creg:count:ip:1.2.3.4") <= 60_000
    assert raw.pttl("creg:count:fail:alice") == -1, "consecutive failures are durable"
    assert raw.pttl("creg:{u:alice}:methods") == -1


def test_a_later_hit_does_not_extend_the_windows_ttl(
    single: RedisStore, raw: redis.Redis, clock: FrozenClock
) -> None:
    single.incr("ip:1.2.3.4", ttl=60)
    raw.pexpire("creg:count:ip:1.2.3.4", 5_000)  # as if 55 s had passed for Redis
    clock.advance(55)
    assert single.incr("ip:1.2.3.4", ttl=60) == 2
    assert raw.pttl("creg:count:ip:1.2.3.4") <= 5_000


# -- audit stream ---------------------------------------------------------------------------------


def test_events_older_than_the_retention_are_trimmed(
    redis_server: RedisServer, clock: FrozenClock
) -> None:
    redis_server.flush()
    store = RedisStore.from_url(redis_server.url, clock=clock, audit_retention=100)
    try:
        store.append_audit(event("old", at=clock.now()))
        clock.advance(101)
        store.append_audit(event("new", at=clock.now()))
        assert [e.event for e in store.list_audit()] == ["new"]
    finally:
        store.close()


def test_the_stream_keeps_at_most_maxlen_events(
    redis_server: RedisServer, clock: FrozenClock
) -> None:
    redis_server.flush()
    store = RedisStore.from_url(redis_server.url, clock=clock, audit_maxlen=3)
    try:
        for i in range(5):
            store.append_audit(event(f"e{i}", at=T0 + i))
        assert [e.event for e in store.list_audit()] == ["e4", "e3", "e2"]
    finally:
        store.close()


def test_list_audit_since_stops_at_entries_written_long_before(
    single: RedisStore, clock: FrozenClock
) -> None:
    # Written now but stamped 40 days ahead: an event nobody writes, so a read that reached it
    # would list it; list_audit(since=...) stops before it (documented AUDIT_CLOCK_SKEW).
    single.append_audit(event("stamped-ahead", at=T0 + 40 * 86400))
    clock.advance(30 * 86400)
    single.append_audit(event("recent", at=clock.now()))
    assert [e.event for e in single.list_audit(since=clock.now() - 60)] == ["recent"]
    assert [e.event for e in single.list_audit()] == ["stamped-ahead", "recent"]


@pytest.fixture
def on_cluster(redis_cluster: RedisCluster3, clock: FrozenClock) -> Iterator[RedisStore]:
    redis_cluster.flush()
    store = RedisStore.from_url(redis_cluster.url, clock=clock, cluster=True)
    yield store
    store.close()


def test_events_of_a_change_on_a_cluster_reach_the_stream_once(on_cluster: RedisStore) -> None:
    """The outbox path: left behind by a crash, moved by list_audit; a repeated move counts once."""
    record = method()
    on_cluster.add_method(record, limit=5, events=[event("method.added")])
    client = on_cluster._client
    entry = client.xrange("creg:audit")[0][1][b"e"]
    client.rpush("creg:{u:alice}:outbox", entry)  # a move that crashed before removing it
    client.rpush(
        "creg:{u:alice}:outbox",
        b'{"at":1,"correlation_id":null,"detail":{},'
        b'"eid":"x1","event":"left.behind","ip":null,"outcome":"info","user_id":"alice"}',
    )
    assert [e.event for e in on_cluster.list_audit()] == ["method.added", "left.behind"]
    assert client.exists("creg:{u:alice}:outbox") == 0

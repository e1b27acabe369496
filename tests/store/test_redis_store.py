"""Redis only: key layout and hash tags, the methods hash and its round trips, lookup claims, TTLs,
audit retention, the cluster outbox."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from redis_servers import CountingPool, RedisCluster3, RedisServer
from store_helpers import T0, event, method

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config import parse_config
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.exceptions import InvalidInput, LimitReached, StoreUnavailable
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import MethodRecord, UserState
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store.factory import open_store
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
    assert len(tagged) == 3, tagged  # the methods hash, state, session index
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


@pytest.mark.parametrize(
    ("stored", "offered", "advanced"),
    [
        pytest.param(999, 1000, True, id="one more digit is greater"),
        pytest.param(1000, 999, False, id="one digit fewer is smaller"),
        pytest.param(2**60 + 1, 2**60, False, id="beyond 2**53, the last digit decides"),
        pytest.param(10**30, 10**30 + 1, True, id="thirty-one digits"),
    ],
)
def test_counters_compare_as_decimal_text(
    single: RedisStore, raw: redis.Redis, stored: int, offered: int, advanced: bool
) -> None:
    record = method(counter=stored)
    single.add_method(record, limit=5)
    assert single.advance_counter("alice", record.id, offered, T0 + 1) is advanced
    value = raw.hget("creg:{u:alice}:registered", record.id)
    assert value is not None
    assert value.split(b"|")[2] == str(offered if advanced else stored).encode()
    got = single.get_method("alice", record.id)
    assert got is not None and got.counter == (offered if advanced else stored)


# -- the methods hash -----------------------------------------------------------------------------


def test_a_users_methods_are_one_hash_with_one_field_per_method(
    single: RedisStore, raw: redis.Redis
) -> None:
    first, second = method(), method(kind=MethodKind.EMAIL, lookup="cred-1")
    single.add_method(first, limit=5)
    single.add_method(second, limit=5)
    assert raw.type("creg:{u:alice}:registered") == b"hash"
    assert set(raw.hkeys("creg:{u:alice}:registered")) == {first.id.encode(), second.id.encode()}
    value = raw.hget("creg:{u:alice}:registered", second.id)
    assert value is not None and value.startswith(b"email|2|0||"), value  # kind|seq|counter|used|
    single.delete_method("alice", first.id)
    single.delete_method("alice", second.id)
    assert raw.exists("creg:{u:alice}:registered") == 0, "the last delete removes the key"
    assert single.list_user_ids() == []


def test_awkward_bytes_and_text_survive_add_update_and_advance(redis_store: RedisStore) -> None:
    """The value's separators ('|', newline) inside every free-form part, and a binary secret."""
    record = method(
        kind=MethodKind.HARDWARE_OATH,
        label="ما|فتاح\nkey \ud800",
        data={"serial|x": "a\nb|c", "n": 2**70, "f": 0.1, "nested": {"é": [None, True]}},
        secret=b"\n|\x00\xff\r\n" * 3,
        counter=2**60,
        lookup='SN|1\n"2"',
    )
    redis_store.add_method(record, limit=5)
    assert redis_store.get_method("alice", record.id) == record
    assert redis_store.find_method_by_lookup('SN|1\n"2"') == record
    changed = MethodRecord(
        id=record.id, user_id="alice", kind=record.kind, label="|\n", created_at=T0,
        data={"|": "\n"}, secret=b"\n", lookup=record.lookup,
    )  # fmt: skip
    assert redis_store.update_method(changed) is True
    assert redis_store.advance_counter("alice", record.id, 2**60 + 1, T0 + 5) is True
    got = redis_store.get_method("alice", record.id)
    assert got == MethodRecord(
        id=record.id, user_id="alice", kind=record.kind, label="|\n", created_at=T0,
        data={"|": "\n"}, secret=b"\n", counter=2**60 + 1, last_used_at=T0 + 5,
        lookup=record.lookup,
    )  # fmt: skip
    assert redis_store.list_methods("alice") == [got]
    assert redis_store.delete_method("alice", record.id) is True
    assert redis_store.find_method_by_lookup('SN|1\n"2"') is None


def test_ties_list_in_insertion_order_after_deletes(redis_store: RedisStore) -> None:
    """The sequence of a new method is one more than the greatest left, not than the count."""
    a, b, c, d, e = (method(kind=MethodKind.EMAIL, label=n) for n in "abcde")
    for record in (a, b, c):
        redis_store.add_method(record, limit=10)
    redis_store.delete_method("alice", c.id)
    redis_store.add_method(d, limit=10)  # the greatest left is b's
    redis_store.delete_method("alice", a.id)
    redis_store.add_method(e, limit=10)
    assert [m.label for m in redis_store.list_methods("alice")] == ["b", "d", "e"]


def test_the_limit_counts_exactly_its_kind_after_updates_and_advances(
    redis_store: RedisStore,
) -> None:
    """Kinds sharing a suffix (``*_phone``) are told apart; rewritten values still count."""
    phones = [method(kind=MethodKind.MOBILE_PHONE) for _ in range(2)]
    for record in phones:
        redis_store.add_method(record, limit=2)
    redis_store.add_method(method(kind=MethodKind.OFFICE_PHONE), limit=1)
    redis_store.add_method(method(kind=MethodKind.ALTERNATE_PHONE), limit=1)
    assert redis_store.update_method(MethodRecord(
        id=phones[0].id, user_id="alice", kind=MethodKind.MOBILE_PHONE, label="x", created_at=T0,
    )) is True  # fmt: skip
    assert redis_store.advance_counter("alice", phones[1].id, 7, T0) is True
    for kind, limit in [(MethodKind.MOBILE_PHONE, 2), (MethodKind.OFFICE_PHONE, 1)]:
        with pytest.raises(LimitReached):
            redis_store.add_method(method(kind=kind), limit=limit)
    redis_store.add_method(method(kind=MethodKind.MOBILE_PHONE), limit=3)
    redis_store.delete_method("alice", phones[0].id)
    redis_store.add_method(method(kind=MethodKind.MOBILE_PHONE), limit=3)
    kinds = [m.kind for m in redis_store.list_methods("alice")]
    assert kinds.count(MethodKind.MOBILE_PHONE) == 3 and len(kinds) == 5


def test_deleting_a_method_releases_its_claim_and_no_other(
    single: RedisStore, raw: redis.Redis
) -> None:
    keyed = method(kind=MethodKind.WEBAUTHN, lookup="cred-1")
    other = method(kind=MethodKind.WEBAUTHN, lookup="cred-2")
    plain = method()
    for record in (keyed, other, plain):
        single.add_method(record, limit=10)
    assert single.delete_method("alice", plain.id) is True
    assert single.delete_method("alice", keyed.id) is True
    assert raw.exists("creg:lookup:cred-1") == 0
    assert raw.hget("creg:lookup:cred-2", "m") == other.id.encode()
    assert single.find_method_by_lookup("cred-2") == other


# -- round trips ----------------------------------------------------------------------------------


@pytest.fixture
def counted(
    redis_server: RedisServer, raw: redis.Redis, clock: FrozenClock
) -> Iterator[tuple[RedisStore, list[bytes]]]:
    """A one-server store whose connections record every write to the socket: one per request
    (a single command, or a whole pipeline), named by its first command. Scripts are loaded
    and the connection is open before the test starts counting."""
    redis_server.flush()
    for name in lua.__all__:
        raw.script_load(getattr(lua, name))
    pool = CountingPool(redis_server.port)
    sent = pool.sent
    store = RedisStore(redis.Redis(connection_pool=pool), clock=clock)
    store.list_methods("nobody")  # connects (the handshake is not counted)
    sent.clear()
    yield store, sent
    store.close()
    pool.disconnect()


@pytest.mark.parametrize("n", [0, 1, 3, 12])
def test_list_methods_is_one_round_trip(counted: tuple[RedisStore, list[bytes]], n: int) -> None:
    store, sent = counted
    added = [method(kind=MethodKind.EMAIL, created_at=T0 + i % 2) for i in range(n)]
    for record in added:
        store.add_method(record, limit=20)
    sent.clear()
    listed = store.list_methods("alice")
    assert sent == [b"HGETALL"]
    assert listed == sorted(added, key=lambda m: m.created_at)


def test_round_trips_of_each_method_operation(
    counted: tuple[RedisStore, list[bytes]],
) -> None:
    store, sent = counted
    plain, keyed = method(), method(kind=MethodKind.WEBAUTHN, lookup="cred-1")
    steps: list[tuple[str, Callable[[], object]]] = [
        ("add", lambda: store.add_method(plain, limit=5, events=[event()])),
        ("add with a lookup", lambda: store.add_method(keyed, limit=5)),
        ("get", lambda: store.get_method("alice", plain.id)),
        ("list", lambda: store.list_methods("alice")),
        ("find by lookup", lambda: store.find_method_by_lookup("cred-1")),
        ("update", lambda: store.update_method(plain)),
        ("advance", lambda: store.advance_counter(
            "alice", plain.id, 1, T0, events=[event()], reset=["fail:alice"])),
        ("replay", lambda: store.advance_counter("alice", plain.id, 1, T0)),
        ("delete", lambda: store.delete_method("alice", plain.id, events=[event()])),
        ("delete with a lookup", lambda: store.delete_method("alice", keyed.id)),
    ]  # fmt: skip
    trips: dict[str, list[bytes]] = {}
    for name, step in steps:
        sent.clear()
        step()
        trips[name] = list(sent)
    script, claim = [b"EVALSHA"], [b"EVALSHA", b"EVALSHA"]  # the claim (or release) and the change
    assert trips == {
        "add": script, "add with a lookup": claim, "get": [b"HGET"], "list": [b"HGETALL"],
        "find by lookup": [b"HMGET", b"HGET"], "update": script, "advance": script,
        "replay": script, "delete": script, "delete with a lookup": claim,
    }  # fmt: skip


def test_a_checked_advance_saves_the_planned_session_in_its_one_round_trip(
    counted: tuple[RedisStore, list[bytes]],
) -> None:
    """The MFA verify's write on one server (issue 22): the limits checked, the step, its event,
    the counters cleared and the upgraded session saved are one script; the block's save of
    that session then sends nothing (before: a script of its own, a second round trip)."""
    store, sent = counted
    record = method(counter=1)
    store.add_method(record, limit=5)
    store.save_session("k.old", {"uid": "alice"}, user_id="alice", ttl=600)
    upgraded = {"uid": "alice", "amr": ["pwd", "otp", "mfa"]}
    counter = "fail:user:alice:consecutive"
    sent.clear()
    with store.transaction():
        store.plan_session_save(
            "k.new", upgraded, user_id="alice", ttl=600, replaces="k.old", create=False
        )
        assert store.advance_counter_checked(
            "alice", record.id, 2, T0, checks=[(counter, 100, "account-locked")],
            events=[event("mfa.succeeded")], reset=[counter],
        ) is True  # fmt: skip
        assert store.save_session(
            "k.new", upgraded, user_id="alice", ttl=600, replaces="k.old", create=False
        )
    assert sent == [b"EVALSHA"]
    assert store.load_session("k.new") == upgraded


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
    assert raw.pttl("creg:{u:alice}:registered") == -1


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


def test_entries_follow_write_order_when_the_clock_steps_back(
    single: RedisStore, raw: redis.Redis, clock: FrozenClock
) -> None:
    """An id is never below the stream's last: after a step back the entries go on at the last
    entry's ms (the events keep their own ``at``), with one read of the stream (XREVRANGE) per
    write while the clock is behind it, and none once it has caught up."""
    raw.config_resetstat()
    single.append_audit(event("first", at=T0))
    single.put_user_state(UserState(user_id="alice"), events=[event("second", at=T0)])
    assert raw.info("commandstats").get("cmdstat_xrevrange", {}).get("calls", 0) == 0
    clock.advance(-5)
    single.append_audit(event("third", at=T0 - 5))
    single.put_user_state(UserState(user_id="bob"), events=[event("fourth"), event("fifth")])
    ids = [entry_id for entry_id, _ in raw.xrange("creg:audit")]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))
    assert [int(i.split(b"-")[0]) for i in ids] == [int(T0 * 1000)] * 5
    assert raw.info("commandstats")["cmdstat_xrevrange"]["calls"] == 2
    clock.advance(10)
    single.append_audit(event("sixth", at=T0 + 5))
    assert raw.info("commandstats")["cmdstat_xrevrange"]["calls"] == 2
    assert raw.xrevrange("creg:audit", count=1)[0][0] == f"{int((T0 + 5) * 1000)}-0".encode()
    events = [e.event for e in single.list_audit()]
    assert events == ["sixth", "fifth", "fourth", "second", "first", "third"]


def test_an_audit_stream_of_the_wrong_type_fails_closed_and_writes_nothing_more(
    single: RedisStore, raw: redis.Redis
) -> None:
    raw.set("creg:audit", "not a stream")
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        single.append_audit(event("lost"))
    assert raw.get("creg:audit") == b"not a stream"


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


# -- a Redis on the same host, by its Unix socket ---------------------------------------------------


def test_a_unix_socket_url_opens_the_store_through_the_config(clock: FrozenClock) -> None:
    """``[storage.redis] url = "unix:///path"``: a Redis on the same host, about a fifth cheaper
    per round trip here than loopback TCP (docs/deploy.md); the timeouts apply the same."""
    folder = Path(tempfile.mkdtemp(prefix="rs"))  # a socket's path must stay short (104 bytes)
    sock = folder / "redis.sock"
    server = RedisServer(folder, extra=("--unixsocket", str(sock), "--unixsocketperm", "700"))
    server.start()
    try:
        config = parse_config({
            "secrets": {"encryption_keys": [generate_key()]},
            # A disposable server without persistence, said so (production would refuse it).
            "storage": {"backend": "redis", "redis": {"url": f"unix://{sock}",
                                                      "allow_no_persistence": True}},
        })  # fmt: skip
        store = open_store(config.storage, clock=clock)
        try:
            record = method()
            store.add_method(record, limit=5, events=[event()])
            assert store.list_methods("alice") == [record]
            assert [e.event for e in store.list_audit()] == ["method.added"]
        finally:
            store.close()
        server.kill()
        store = open_store(config.storage, clock=clock)
        with pytest.raises(StoreUnavailable):
            store.list_methods("alice")  # fails closed, at once: no server on the socket
        store.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

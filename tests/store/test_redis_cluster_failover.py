"""Redis Cluster failovers: 3 primaries and 3 replicas on loopback, primaries killed by SIGKILL.

Issue 23: one failed primary must refuse only the requests that need a key on it (not every
sign-in through the one audit stream); a read whose slot moved in a failover is tried once more
on the promoted replica; an MFA step whose session save fails after its code was used takes the
use back, so the audit never shows an MFA that did not complete. docs/redis.md, "Cluster".

One cluster for the module (``cluster-node-timeout`` 1000 ms: a promotion takes about two
seconds); every test starts from six nodes, three primaries, replicas linked and empty data.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from redis.crc import key_slot
from redis_servers import RedisCluster6, RedisServer, require_redis, wait_until
from store_helpers import T0, event, method

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store import UserState
from oidc_combinedreg.store.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from webtest import Browser, base_config, code_from, location  # noqa: E402


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster6]:
    require_redis()
    cluster = RedisCluster6(Path(tmp_path_factory.mktemp("cluster6")), node_timeout_ms=1000)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(six: RedisCluster6) -> RedisCluster6:
    for node in six.nodes:
        if node not in six.alive():
            six.restart(node)  # with its nodes.conf: it comes back as a replica
    six.hold_failover(False)
    six.set_full_coverage(False)
    six.wait_healthy()
    for primary in six.primaries():
        with primary.client() as c:
            c.flushall()
    return six


def open_store(cluster: RedisCluster6, clock: FrozenClock) -> RedisStore:
    url = cluster.primaries()[0].url
    return RedisStore.from_url(
        url, clock=clock, cluster=True, socket_timeout=0.5, connect_timeout=0.5
    )


def slot_owners(cluster: RedisCluster6) -> dict[int, int]:
    """Slot -> port of its primary, as the cluster serves them now."""
    owners: dict[int, int] = {}
    with cluster.alive()[0].client() as c:
        for start, end, primary, *_ in c.execute_command("CLUSTER SLOTS"):
            owners.update(dict.fromkeys(range(start, end + 1), int(primary[1])))
    return owners


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def named_on(owners: dict[int, int], node: RedisServer, key_of: object, stem: str) -> str:
    """A name ``<stem><n>`` whose key (``key_of(name)``) is served by ``node``."""
    assert callable(key_of)
    return next(
        f"{stem}{n}" for n in range(10_000) if owners[slot(key_of(f"{stem}{n}"))] == node.port
    )


def replicated(cluster: RedisCluster6) -> None:
    """Every primary's writes so far are on its replica (``WAIT``): a kill loses none. (A
    replica promoted earlier in the test has none; it is not killed again.)"""
    for primary in cluster.primaries():
        with primary.client() as c:
            if int(c.info("replication")["connected_slaves"]):
                assert c.execute_command("WAIT", 1, 5000) == 1


def promoted(cluster: RedisCluster6, victim: RedisServer, key: str) -> None:
    """Until every live node names a promoted replica as the primary of ``key``'s slot."""

    def done() -> bool:
        owner = cluster.owner_everywhere(key)
        return owner is not None and owner is not victim and len(cluster.primaries()) == 3

    wait_until(done, within=20, what=f"a replica of {victim.port} promoted")


# -- 23.3: a read after a failover ----------------------------------------------------------------


def test_a_read_after_a_failover_reaches_the_promoted_replica_at_once(
    cluster: RedisCluster6, clock: FrozenClock
) -> None:
    store = open_store(cluster, clock)
    writer = open_store(cluster, clock)
    try:
        owners = slot_owners(cluster)
        victim = cluster.primaries()[0]
        keys = store._keys  # the layout, to place the test's names on the victim
        user = named_on(owners, victim, lambda u: keys.methods(u), "user")
        sid = named_on(owners, victim, lambda k: keys.session(f"{k}.secret"), "key") + ".secret"
        counter = named_on(owners, victim, lambda k: keys.counter(k), "fail:ip:")
        record = method(user_id=user)
        store.add_method(record, limit=5)
        store.put_user_state(UserState(user_id=user, skips_used=2))
        assert store.save_session(sid, {"step": "mfa"}, user_id=user, ttl=600)
        writer.get_count(counter)  # both clients hold the slot map from before the failover
        replicated(cluster)

        victim.kill()
        promoted(cluster, victim, keys.methods(user))

        # Each read's first try goes to the dead primary (refused), the map is read again,
        # and the second try reaches the promoted replica: no 503.
        assert store.get_user_state(user).skips_used == 2
        assert store.load_session(sid) == {"step": "mfa"}
        assert store.get_method(user, record.id) == record
        # A write (a script) whose first try found the old primary refusing connections was
        # never sent: it is sent once more, to the promoted replica, and counts once.
        assert writer.incr(counter, ttl=None) == 1
        assert writer.get_count(counter) == 1
    finally:
        store.close()
        writer.close()


# -- 23.4: an MFA step whose session save fails after the code was used ---------------------------


def test_a_used_code_is_taken_back_when_the_session_save_after_it_fails(
    cluster: RedisCluster6, clock: FrozenClock
) -> None:
    store = open_store(cluster, clock)
    try:
        owners = slot_owners(cluster)
        users_node, sessions_node, _ = cluster.primaries()
        keys = store._keys
        user = named_on(owners, users_node, lambda u: keys.methods(u), "user")
        key = named_on(owners, sessions_node, lambda k: keys.session(f"{k}.a"), "key")
        record = method(user_id=user, counter=0)
        store.add_method(record, limit=5)
        assert store.save_session(f"{key}.a", {"step": "mfa"}, user_id=user, ttl=600)
        replicated(cluster)
        cluster.hold_failover()

        with pytest.raises(StoreUnavailable), store.transaction():  # the MFA step's block
            assert store.advance_counter(
                user, record.id, 5, T0, events=[event("mfa.succeeded", user)],
                reset=[f"fail:user:{user}:consecutive"],
            )  # fmt: skip
            # a security key's or a texted code's success is audited by its own call
            store.append_audit(event("mfa.succeeded", user, detail={"kind": "webauthn"}))
            sessions_node.kill()  # between the used code and the upgraded session's save
            store.save_session(f"{key}.b", {"step": "done"}, user_id=user, ttl=600,
                               replaces=f"{key}.a", create=False)  # fmt: skip

        # "Nothing was changed" is true: the code is not used, no MFA in the audit.
        again = store.get_method(user, record.id)
        assert again is not None and again.counter == 0 and again.last_used_at is None
        cluster.hold_failover(False)
        promoted(cluster, sessions_node, keys.session(f"{key}.a"))
        assert [e.event for e in store.list_audit(user_id=user)] == []
        assert store.advance_counter(user, record.id, 5, T0), "the same code works again"
    finally:
        store.close()


# -- 23.2: each primary killed in turn under load -------------------------------------------------


@dataclass
class Attempt:
    """One sign-in's store calls, as the web layer makes them (password, then the MFA step)."""

    n: int
    user: str
    needs: list[str]
    started: str
    ended: str = ""
    password_done: bool = False
    error: BaseException | None = None


@dataclass
class Load:
    store: RedisStore
    method_ids: dict[str, str]
    phase: str = "before"
    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sign_in(self, user: str) -> None:
        store, keys = self.store, self.store._keys
        with self.lock:
            n = next(self.counter)
        key, ip = secrets.token_urlsafe(12), f"192.0.2.{n % 4}"
        sid, rotated = f"{key}.{secrets.token_urlsafe(8)}", f"{key}.{secrets.token_urlsafe(8)}"
        window = f"fail:user:{user}:window"
        # What it cannot do without: the user's slot, the session's, the throttle's counters
        # it counts or reads. Not the audit stream, nor the counters a success clears.
        needs = [keys.methods(user), keys.session(sid), keys.session(rotated),
                 keys.counter(window), keys.counter(f"fail:ip:{ip}")]  # fmt: skip
        attempt = Attempt(n, user, needs, started=self.phase)
        cid = f"attempt-{n}"
        try:
            assert store.save_session(sid, {"u": user}, user_id=user, ttl=600)
            store.append_audit(event("signin.password", user, correlation_id=cid))
            attempt.password_done = True
            assert store.load_session(sid) is not None
            assert store.get_method(user, self.method_ids[user]) is not None
            with store.transaction():
                store.counters(incr=[(window, 300.0)], read=[f"fail:ip:{ip}"])
                assert store.advance_counter(
                    user, self.method_ids[user], n, T0,
                    events=[event("mfa.succeeded", user, correlation_id=cid)],
                    reset=[f"fail:user:{user}:consecutive"],
                )  # fmt: skip
                assert store.save_session(rotated, {"u": user, "mfa": True}, user_id=user,
                                          ttl=600, replaces=sid, create=False)  # fmt: skip
        except StoreUnavailable as exc:
            attempt.error = exc
        attempt.ended = self.phase
        with self.lock:
            self.attempts.append(attempt)

    def run(self, users: list[str], gate: threading.Lock) -> None:
        while not self.stop.is_set():
            for user in users:
                with gate:
                    self.sign_in(user)


def test_a_failed_primary_refuses_only_the_sign_ins_that_need_it(
    cluster: RedisCluster6, clock: FrozenClock
) -> None:
    store = open_store(cluster, clock)
    users = [f"user{i}" for i in range(24)]
    method_ids = {}
    for user in users:
        record = method(user_id=user, counter=0)
        store.add_method(record, limit=5)
        method_ids[user] = record.id
    load = Load(store, method_ids)
    # Two threads on one store (a worker's threads), each with its own users: their counters
    # only go up.
    gates = [threading.Lock(), threading.Lock()]
    threads = [
        threading.Thread(target=load.run, args=(users[i::2], gates[i]), daemon=True)
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    report = []
    try:
        for victim_port in [p.port for p in cluster.primaries()]:
            victim = next(n for n in cluster.nodes if n.port == victim_port)
            cluster.hold_failover()
            time.sleep(0.3)
            for gate in gates:  # between two sign-ins of each thread: nothing in flight
                gate.acquire()
            owners = slot_owners(cluster)
            replicated(cluster)
            victim.kill()
            load.phase = f"down {victim_port}"
            for gate in gates:
                gate.release()
            time.sleep(1.0)  # the primary is down and not replaced (failover held)
            load.phase = f"failover {victim_port}"
            cluster.hold_failover(False)
            promoted(cluster, victim, named_on(owners, victim, lambda k: k, "k"))
            load.phase = f"after {victim_port}"  # it stays down: the next test's setup restarts it

            down = [a for a in load.attempts if a.started == a.ended == f"down {victim_port}"]
            refused = [a for a in down if a.error is not None]
            needless = [a for a in refused if all(owners[slot(k)] != victim_port for k in a.needs)]
            report.append((victim_port, len(down), len(refused), len(needless)))
            assert down and len(refused) < len(down), "some sign-ins went on during the outage"
            assert not needless, (
                f"primary {victim_port} down: {len(needless)} of {len(down)} sign-ins that "
                f"need none of its keys were refused: {needless[0].error}"
            )
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        print("primary killed, sign-ins during the outage, refused, refused needlessly:", report)

    try:
        events = store.list_audit(limit=100_000)
        passwords = {e.correlation_id for e in events if e.event == "signin.password"}
        mfas = {e.correlation_id for e in events if e.event == "mfa.succeeded"}
        settled = [a for a in load.attempts if a.started == a.ended]
        assert settled
        for attempt in settled:
            cid = f"attempt-{attempt.n}"
            assert (cid in passwords) == attempt.password_done, attempt
            # The audit shows an MFA exactly when the sign-in completed it.
            assert (cid in mfas) == (attempt.error is None), attempt
    finally:
        store.close()


# -- cluster-require-full-coverage yes ------------------------------------------------------------


def test_with_full_coverage_required_the_whole_cluster_refuses_until_the_promotion(
    cluster: RedisCluster6, clock: FrozenClock
) -> None:
    """Redis' default (``cluster-require-full-coverage yes``): once a primary is marked failed
    every node refuses every command (``CLUSTERDOWN``) until its replica is promoted, about a
    second later. docs/redis.md says to set it to ``no``."""
    store = open_store(cluster, clock)
    try:
        owners = slot_owners(cluster)
        victim, live, _ = cluster.primaries()
        keys = store._keys
        elsewhere = named_on(owners, live, lambda u: keys.user(u, "state"), "user")
        store.put_user_state(UserState(user_id=elsewhere, skips_used=1))
        replicated(cluster)
        cluster.set_full_coverage(True)
        cluster.hold_failover()
        victim.kill()
        cluster.wait_marked_failed(victim)
        with pytest.raises(StoreUnavailable, match="CLUSTERDOWN|ClusterDown"):
            store.get_user_state(elsewhere)  # its primary is up, and still refuses
        cluster.hold_failover(False)
        promoted(cluster, victim, named_on(owners, victim, lambda k: k, "k"))
        wait_until(lambda: _answers(store, elsewhere), within=10, what="the cluster serving")
    finally:
        store.close()


def _answers(store: RedisStore, user: str) -> bool:
    try:
        return store.get_user_state(user).skips_used == 1
    except StoreUnavailable:
        return False


# -- 23.2 through the WSGI stack: the audit stream's primary down ---------------------------------


def test_a_whole_sign_in_goes_on_while_the_audit_streams_primary_is_down(
    cluster: RedisCluster6, clock: FrozenClock, tmp_path: Path
) -> None:
    """alice's keys (her slot, her throttle counters, the address's) are on the other primaries
    (checked); the session of a sign-in is wherever its random id falls, so a sign-in whose
    session falls on the dead primary is refused and the next browser tries again."""
    store = open_store(cluster, clock)
    config = parse_config(base_config(tmp_path))
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    keys = store._keys
    try:
        first = Browser(reg, host, clock)
        first.login("alice")
        wizard = location(first.authorize())
        secret = first.register_totp(wizard)
        first.post_json(wizard, {"action": "finish", "csrf_token": first.csrf(wizard)})
        victim = cluster.owner(keys.audit())
        needs = [keys.methods("alice"), keys.counter("fail:user:alice:window"),
                 keys.counter("fail:user:alice:consecutive"), keys.counter("fail:ip:127.0.0.1")]  # fmt: skip
        assert all(cluster.owner(k).port != victim.port for k in needs)
        replicated(cluster)
        cluster.hold_failover()
        victim.kill()
        clock.advance(120)

        refused = 0
        for _ in range(12):
            browser = Browser(reg, host, clock)
            try:
                login = browser.login("alice")  # password_verified: a session, signin.password
                break
            except StoreUnavailable:  # the plain host lets it through (the example IdP: 503)
                refused += 1
        assert refused < 12, "every password sign-in refused"
        assert login.status_code == 303, login.get_data(as_text=True)[:300]
        mfa_url = location(browser.authorize())
        page = browser.get_json(mfa_url).get_json()
        form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
                "code": pyotp.TOTP(secret).at(clock.now())}  # fmt: skip
        r = browser.post(mfa_url, data=form)
        assert r.status_code == 303, r.get_data(as_text=True)[:300]
        for _ in range(4):  # up to the relying party
            if code_from(r) is not None or r.status_code not in (302, 303):
                break
            r = browser.get(location(r))
        assert code_from(r) is not None

        cluster.hold_failover(False)
        promoted(cluster, victim, keys.audit())
        events = [e.event for e in store.list_audit(user_id="alice", since=clock.now() - 1)]
        assert "signin.password" in events and "mfa.succeeded" in events, events
    finally:
        store.close()

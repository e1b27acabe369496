"""The round trips to Redis (one server) of the requests on the hot path, through the whole WSGI
stack. On Redis a round trip costs about a third of a bare Flask request here (docs/deploy.md),
so the MFA verify's count is what its throughput rests on, and what the benchmark's Redis floor
(benchmarks/mfa_verify.py, ``VERIFY_ROUND_TRIPS``) imitates: a change that adds one fails here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from plain_wsgi_host import DictDirectory, make_app
from webtest import (
    Browser,
    assert_method_removed_after_read_is_refused,
    base_config,
    cid_of,
    code_from,
    location,
    post_with_change_after_read,
    stored_conts,
)

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.config.model import ThrottleConfig
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from redis_servers import CountingPool, RedisServer, require_redis, script_names  # noqa: E402

#: what an MFA verify with an authenticator app sends, in order (one server)
VERIFY = [
    # the session, with its user's methods and state (decision 216; before: an HMGET of the
    # session, then an HGET of the method the form names)
    b"EVALSHA LOAD_SESSION_READS",
    # one script: the throttle's limits checked, the step advanced, its audit event, the
    # account's counters cleared, and the upgraded session saved under its new id (the old id
    # deleted). Before issue 22: a pipeline counting the attempt, this script without the
    # session, then a script of its own for the session save (5, then 4, 3 round trips).
    b"EVALSHA ADVANCE_COUNTER_CHECKED",
]


@pytest.fixture
def counted_store(counted_browser: tuple[Browser, list[bytes]]) -> RedisStore:
    store = counted_browser[0].reg.store
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
def counted_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, list[bytes]]]:
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    pool = CountingPool(server.port, scripts=script_names(lua))
    client = redis.Redis(connection_pool=pool)
    for name in lua.__all__:
        client.script_load(getattr(lua, name))  # a first use would add a NOSCRIPT round trip
    store = RedisStore(client, clock=clock)
    reg, host = make_app(
        parse_config(base_config(tmp_path)), DictDirectory(), store=store, clock=clock
    )
    try:
        yield Browser(reg, host, clock), pool.sent
    finally:
        store.close()
        pool.disconnect()
        server.stop()


def test_an_mfa_verify_makes_two_round_trips(
    counted_browser: tuple[Browser, list[bytes]],
) -> None:
    browser, sent = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()

    sent.clear()
    r = browser.post(mfa_url, data=form)

    # straight back to /authorize: the continuation taken back in the planned session's save
    assert r.status_code == 303 and location(r) == "/authorize?client_id=demo&state=s1"
    assert sent == VERIFY
    assert cid_of(mfa_url) not in stored_conts(browser)


def test_a_session_ended_during_the_verify_stays_ended(
    counted_browser: tuple[Browser, list[bytes]],
    counted_store: RedisStore,
) -> None:
    """'Sign out everywhere' in another tab after this request loaded its session, before its
    code is checked: the script that uses the code saves the upgraded session only while the
    session it replaces is live (live-only saves), so neither id opens a session afterwards.
    The code itself is used and its success audited, as when the save was a call of its own
    (decision 168)."""
    browser, _ = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()
    before = _method_counter(counted_store, form)

    def sign_out_everywhere(user_id: str, method_id: str, record: object) -> None:
        assert counted_store.delete_user_sessions(user_id) == 1

    r = post_with_change_after_read(browser, counted_store, mfa_url, form, sign_out_everywhere)

    assert r.status_code == 403
    assert counted_store.delete_user_sessions("alice") == 0, "no session of alice is live"
    assert browser.get_json("/security-info/").status_code in (401, 403)
    assert _method_counter(counted_store, form) > before
    assert len(counted_store.list_audit(event_prefix="mfa.succeeded", limit=100)) == 1


def test_a_method_removed_after_the_sessions_load_is_refused(
    counted_browser: tuple[Browser, list[bytes]],
    counted_store: RedisStore,
    clock: FrozenClock,
) -> None:
    """The verify reads its method from the session's load (decision 216); an admin removing it
    from another process after that load, before the code is used: the script that uses the
    code finds it gone, as when the method was read a moment before the removal by a round
    trip of its own."""
    browser, _ = counted_browser
    port = counted_store.client.connection_pool.connection_kwargs["port"]
    elsewhere = RedisStore(redis.Redis(port=port), clock=clock)
    try:
        assert_method_removed_after_read_is_refused(browser, counted_store, elsewhere)
    finally:
        elsewhere.close()


def _method_counter(store: RedisStore, form: dict[str, str]) -> int:
    record = store.get_method("alice", form["method_id"])
    assert record is not None
    return record.counter


@pytest.mark.parametrize(
    ("key", "limit"),
    [
        ("fail:user:alice:window", ThrottleConfig().failures_per_window),
        ("fail:user:alice:consecutive", ThrottleConfig().max_consecutive_failures),
        ("fail:ip:127.0.0.1", ThrottleConfig().ip_failures_per_window),
    ],
)
def test_a_right_code_past_a_limit_is_refused_and_counted(
    counted_browser: tuple[Browser, list[bytes]], counted_store: RedisStore, key: str, limit: int
) -> None:
    """The limits are checked in the script that accepts the code: at a limit, the right code
    is refused, nothing is advanced, and the attempt is counted as one that counted first."""
    browser, _ = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()
    before = _method_counter(counted_store, form)
    counted_store.counters(incr=[(key, 300)] * limit)
    window = counted_store.get_count("fail:user:alice:window")
    succeeded = len(counted_store.list_audit(event_prefix="mfa.succeeded", limit=100))

    r = browser.post(mfa_url, data=form)

    assert r.status_code == 429
    assert _method_counter(counted_store, form) == before, "the code was not used"
    assert counted_store.get_count("fail:user:alice:window") == window + 1
    assert len(counted_store.list_audit(event_prefix="mfa.succeeded", limit=100)) == succeeded


def test_a_replayed_code_is_counted_against_the_account_and_the_ip(
    counted_browser: tuple[Browser, list[bytes]], counted_store: RedisStore
) -> None:
    browser, _ = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()
    assert browser.post(mfa_url, data=form).status_code == 303
    browser.login("alice")
    again = location(browser.authorize())
    form = {**form, "csrf_token": browser.csrf(again)}

    r = browser.post(again, data=form)

    assert r.status_code != 303
    assert counted_store.get_count("fail:user:alice:consecutive") == 1
    assert counted_store.get_count("fail:user:alice:window") == 1
    assert counted_store.get_count("fail:ip:127.0.0.1") == 1


def test_a_cleared_authorize_reads_and_writes_nothing_back(
    counted_browser: tuple[Browser, list[bytes]],
) -> None:
    """A cleared /authorize moments after the last: the session, the user's methods and state
    read in one round trip (decision 216; before: three), and no save of the session it left as
    it was (decision 205; before: a fourth round trip, the save's script, writing the same
    data)."""
    browser, sent = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()
    authorize = location(browser.post(mfa_url, data=form))
    assert code_from(browser.get(authorize)) is not None
    browser.clock.advance(5)
    sent.clear()
    assert code_from(browser.get(authorize)) is not None
    assert sent == [b"EVALSHA LOAD_SESSION_READS"]  # session, methods, user state


def test_the_benchmarks_floor_makes_as_many_round_trips() -> None:
    """benchmarks/mfa_verify.py's Redis floor imitates the verify's round trips: one number,
    checked here against the verify's own count (it said 3 after the verify made 2)."""
    from benchmarks.support.bench_app import VERIFY_ROUND_TRIPS

    assert VERIFY_ROUND_TRIPS == len(VERIFY)

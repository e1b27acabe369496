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
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store import redis_scripts as lua
from oidc_combinedreg.store.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from redis_servers import CountingPool, RedisServer, require_redis  # noqa: E402

#: what an MFA verify with an authenticator app sends, in order (one server)
VERIFY = [
    b"HMGET",  # the session
    b"HGET",  # the method the form names
    b"EVAL",  # a pipeline: the throttle counts the attempt, reads the IP's failures
    b"EVALSHA",  # the step advanced, its audit event, the account's counters cleared
    b"EVALSHA",  # the upgraded session saved under its new id, the old id deleted
]


@pytest.fixture
def counted_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, list[bytes]]]:
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    pool = CountingPool(server.port)
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


def test_an_mfa_verify_makes_five_round_trips(
    counted_browser: tuple[Browser, list[bytes]],
) -> None:
    browser, sent = counted_browser
    mfa_url, form = browser.at_mfa_with_totp()

    sent.clear()
    r = browser.post(mfa_url, data=form)

    assert r.status_code == 303 and "/security-info/signin?c=" in location(r)
    assert sent == VERIFY

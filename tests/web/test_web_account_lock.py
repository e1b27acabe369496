"""SECURITY.md case 57 through the WSGI stack: no anonymous request locks a known user out, and
admins see and clear an account's lock (API, dashboard, report), audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_helpers import admin_section, fast_taps
from plain_wsgi_host import DictDirectory, Host
from test_web_tap import TapHost, issue, tap_login
from webtest import Browser, base_config, code_from, location
from werkzeug.test import TestResponse

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.sqlite import SqliteStore

ATTACKER = "203.0.113.{}"


@pytest.fixture
def make_tap_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Browser]]:
    """Browsers on one SQLite store, the host with a TAP form (as in test_web_tap.py)."""
    stores: list[SqliteStore] = []

    def factory(**sections: Any) -> Browser:
        config = parse_config(base_config(tmp_path, admin=admin_section(), **sections))
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        host = Host()
        reg = CombinedRegistration(
            TapHost(host), config=config, directory=DictDirectory(), store=store, clock=clock
        )
        host.reg = reg
        return fast_taps(Browser(reg, host, clock))

    yield factory
    for store in stores:
        store.close()


def wrong_passes(
    browser: Browser, times: int, user: str = "alice", *, per_address: int = 10
) -> list[int]:
    """``times`` wrong passes for ``user`` from anonymous requests, ``per_address`` from each."""
    statuses = []
    saved = browser.remote_addr
    for n in range(times):
        browser.remote_addr = ATTACKER.format(n // per_address + 1)
        statuses.append(tap_login(browser, "AAAA-AAAA-AAAA-AAAA", user=user))
    browser.remote_addr = saved
    return statuses


def follow(browser: Browser, response: TestResponse) -> TestResponse:
    """Follow redirects up to the relying party (at most four hops)."""
    for _ in range(4):
        if code_from(response) is not None or response.status_code not in (302, 303):
            break
        response = browser.get(location(response))
    return response


def test_120_wrong_passes_do_not_lock_the_owner_out_of_mfa_or_a_new_pass(
    make_tap_browser: Callable[..., Browser],
) -> None:
    browser = make_tap_browser()
    mfa_url, form = browser.at_mfa_with_totp("alice")
    attacker = make_tap_browser()
    assert set(wrong_passes(attacker, 120)) == {401}
    # The owner's own correct code still passes (it got 429 before: the durable lock was full).
    r = browser.post(mfa_url, data=form)
    assert r.status_code == 303, r.get_data(as_text=True)
    assert code_from(follow(browser, r)) is not None
    assert browser.reg.store.get_count("fail:user:alice:consecutive") == 0
    # Many addresses together refuse passes for alice for one window (their own limit), no longer.
    fresh = make_tap_browser()
    code = issue(fresh)
    assert tap_login(fresh, code) == 401
    fresh.clock.advance(300)
    assert tap_login(fresh, code) == 303
    assert code_from(follow(fresh, fresh.authorize())) is not None
    assert fresh.get_json("/security-info/").get_json()["page"] == "manage"


def test_120_wrong_passes_from_one_address_do_not_refuse_the_owners_pass(
    make_tap_browser: Callable[..., Browser],
) -> None:
    browser = make_tap_browser()
    code = issue(browser)
    attacker = make_tap_browser()
    statuses = wrong_passes(attacker, 120, per_address=120)
    assert set(statuses) == {401}, "a refused try looks like a wrong one"
    assert tap_login(browser, code) == 303
    throttled = browser.reg.store.list_audit(event_prefix="tap.failed", limit=1000)
    assert sum(e.detail.get("reason") == "throttled" for e in throttled) == 110

"""PostgreSQL faults seen through the web (issue 21.4; SECURITY.md cases 53-55): the server
stopped in the middle of the wizard, or the store's connections cut, is a clear 503 page and its
JSON twin, /authorize never issues a code (no bypass of MFA or Conditional Access), nothing
half-written; once the server is back the same process serves the user at the very step they were
on (PostgreSQL keeps the sessions it acknowledged)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from test_web_redis_and_sqlite_faults import (
    assert_unavailable,
    browser_on,
    to_verify_step,
    verify_and_finish,
)
from webtest import Browser

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from postgres_servers import PostgresServer  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    own = PostgresServer().start()
    own.create_database("creg")
    yield own
    own.destroy()


@pytest.fixture
def browser(server: PostgresServer, tmp_path: Path, clock: FrozenClock) -> Iterator[Browser]:
    if server.process is None:
        server.start()
    store = PostgresStore(server.dsn, clock=clock, pool_timeout=1, max_size=4)
    server.truncate()
    yield browser_on(store, tmp_path, clock)
    store.close()


def test_postgres_down_mid_wizard_is_a_503_and_the_user_continues_after_the_restart(
    server: PostgresServer, browser: Browser, clock: FrozenClock
) -> None:
    wizard, token, secret = to_verify_step(browser)
    server.stop(immediate=True)  # as if it crashed

    assert_unavailable(browser, wizard, token, pyotp.TOTP(secret).at(clock.now()))

    server.start()
    store = browser.reg.store
    assert store.list_methods("alice") == []
    assert store.list_audit(user_id="alice", event_prefix="method.") == []
    # Same process, same session, same step, same pending secret.
    assert browser.get_json(wizard).get_json()["page"] == "totp_verify"
    code = verify_and_finish(browser, wizard, token, secret)
    assert code is not None
    assert {"pwd", "otp", "mfa"} <= set(browser.host.codes[code]["amr"])
    assert [m.kind.value for m in store.list_methods("alice")] == ["totp"]


def test_connections_cut_mid_sign_in_fail_closed_then_the_sign_in_goes_on(
    server: PostgresServer, browser: Browser, clock: FrozenClock
) -> None:
    wizard, token, secret = to_verify_step(browser)
    server.terminate()
    code = pyotp.TOTP(secret).at(clock.now())
    first = browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    # The pooled connection is dead: this request fails closed (never a success, nothing
    # half-written), and the pool is checked at once, so the next request works.
    assert first.status_code == 503
    assert first.get_json()["error"] == "store_unavailable"
    assert browser.reg.store.list_methods("alice") == []
    assert browser.host.codes == {}
    code = verify_and_finish(browser, wizard, token, secret)
    assert code is not None and {"otp", "mfa"} <= set(browser.host.codes[code]["amr"])
    assert [m.kind.value for m in browser.reg.store.list_methods("alice")] == ["totp"]

"""Store faults seen through the web (the whole WSGI stack, in process, a FrozenClock).

Redis (a real ``redis-server`` the test owns and kills):
* stopped in the middle of the wizard -> a clear 503 page and its JSON twin, /authorize never
  issues a code (no bypass of MFA or Conditional Access), nothing half-written;
* started again without persistence: the sessions are gone with everything else, so "continue"
  means "sign in again": the browser is told it is signed out, never waved through;
* started again with AOF (``appendfsync always``): the user continues at the very step they were
  on, with the pending authenticator secret they already scanned;
* a Redis that accepts connections but never answers: the request ends with the 503 page after
  the configured timeout (the test only asserts it finished, with a generous bound).

SQLite: another connection holds the write lock during a registration -> the store's busy
handler retries until the lock is released (success), or gives up after ``busy_timeout_ms`` with
the same clear 503 page and nothing written. SECURITY.md cases 53-55.
"""

from __future__ import annotations

import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, code_from, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.base import Store
from oidc_combinedreg.store.redis import RedisStore
from oidc_combinedreg.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from redis_servers import RedisServer, require_redis  # noqa: E402

AOF = ("--appendonly", "yes", "--appendfsync", "always")
StartRedis = Callable[..., RedisServer]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    require_redis()
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", extra=extra)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def stores() -> Iterator[list[Store]]:
    opened: list[Store] = []
    yield opened
    for store in opened:
        store.close()


def browser_on(store: Store, tmp_path: Path, clock: FrozenClock, **sections: Any) -> Browser:
    reg, host = make_app(
        parse_config(base_config(tmp_path, **sections)), DictDirectory(), store=store, clock=clock
    )
    return Browser(reg, host, clock)


def redis_browser(
    server_url: str, tmp_path: Path, clock: FrozenClock, stores: list[Store], timeout: float = 1.0
) -> Browser:
    store = RedisStore.from_url(
        server_url, clock=clock, socket_timeout=timeout, connect_timeout=timeout
    )
    stores.append(store)
    return browser_on(store, tmp_path, clock)


def to_verify_step(browser: Browser) -> tuple[str, str, str]:
    """Password, then the wizard up to "Let's try it out": (wizard URL, CSRF token, secret)."""
    browser.login("alice")
    wizard = location(browser.authorize())
    assert "/security-info/wizard" in wizard
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    secret = browser.get_json(wizard).get_json()["secret"]
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    assert browser.get_json(wizard).get_json()["page"] == "totp_verify"
    return wizard, token, str(secret)


def verify_and_finish(browser: Browser, wizard: str, token: str, secret: str) -> str | None:
    """Enter the code, finish the wizard, come back to /authorize: the host's code or None."""
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    assert r.status_code == 303, r.get_data(as_text=True)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})  # -> summary
    done = browser.post_json(wizard, {"action": "finish", "csrf_token": token})
    response = browser.get(location(done))
    while response.status_code in (302, 303) and code_from(response) is None:
        response = browser.get(location(response))
    return code_from(response)


def assert_unavailable(browser: Browser, wizard: str, token: str, code: str) -> None:
    """Every way forward is the 503 page (HTML and JSON twin); no code reaches the host."""
    verify = browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    assert verify.status_code == 503
    assert verify.get_json()["error"] == "store_unavailable"
    assert verify.headers["Retry-After"] == "30"
    page = browser.get(wizard)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "We can&#39;t reach our security service" in page.get_data(as_text=True) or (
        "We can't reach our security service" in page.get_data(as_text=True)
    )
    assert "Nothing was changed" in page.get_data(as_text=True)
    authorize = browser.authorize()
    assert authorize.status_code == 503 and code_from(authorize) is None
    assert browser.get_json("/security-info/mfa").status_code == 503
    assert browser.host.codes == {}


# -- Redis stopped mid-wizard ---------------------------------------------------------------------


def test_redis_down_mid_wizard_is_a_503_never_a_code_and_nothing_half_written(
    start_redis: StartRedis, tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    server = start_redis(*AOF)
    browser = redis_browser(server.url, tmp_path, clock, stores)
    wizard, token, secret = to_verify_step(browser)
    server.kill()

    assert_unavailable(browser, wizard, token, pyotp.TOTP(secret).at(clock.now()))

    server.start()  # the AOF brings back exactly what was acknowledged before the kill
    store = browser.reg.store
    assert store.list_methods("alice") == []
    assert store.list_audit(user_id="alice", event_prefix="method.") == []
    assert browser.host.codes == {}


def test_after_a_restart_with_aof_the_user_continues_where_they_were(
    start_redis: StartRedis, tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    server = start_redis(*AOF)
    browser = redis_browser(server.url, tmp_path, clock, stores)
    wizard, token, secret = to_verify_step(browser)
    server.kill()
    assert browser.get_json(wizard).status_code == 503
    server.start()

    # Same session, same step, same pending secret (the one already in the user's app).
    page = browser.get_json(wizard).get_json()
    assert page["page"] == "totp_verify"
    code = verify_and_finish(browser, wizard, token, secret)
    assert code is not None
    assert {"pwd", "otp", "mfa"} <= set(browser.host.codes[code]["amr"])
    assert [m.kind.value for m in browser.reg.store.list_methods("alice")] == ["totp"]


def test_after_a_restart_without_persistence_the_user_signs_in_again(
    start_redis: StartRedis, tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    server = start_redis()  # --save '' --appendonly no: a restart forgets everything
    browser = redis_browser(server.url, tmp_path, clock, stores)
    wizard, token, secret = to_verify_step(browser)
    server.kill()
    server.start()

    # The session is gone: signed out, never waved through; the scanned secret was never bound.
    gone = browser.post_json(
        wizard,
        {"action": "verify", "code": pyotp.TOTP(secret).at(clock.now()), "csrf_token": token},
    )
    assert gone.status_code == 401 and gone.get_json()["error"] == "signed_out"
    authorize = browser.authorize()
    assert code_from(authorize) is None and "/login" in location(authorize)
    assert browser.reg.store.list_methods("alice") == []

    # Continuing means signing in again: the wizard starts over with a new secret.
    clock.advance(30)
    wizard, token, secret = to_verify_step(browser)
    assert verify_and_finish(browser, wizard, token, secret) is not None


# -- bounded timeouts -----------------------------------------------------------------------------


def test_a_redis_that_never_answers_ends_in_a_503_after_the_timeout(
    tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshake; nobody reads or answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        browser = redis_browser(url, tmp_path, clock, stores, timeout=0.2)
        browser.client.set_cookie(browser.reg.sessions.cookie_name, "x" * 43)
        outcome: list[Any] = []

        def request() -> None:
            started = time.monotonic()
            response = browser.get_json("/security-info/wizard")
            outcome.append((response.status_code, time.monotonic() - started))

        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        thread.join(timeout=20)  # generous: 0.2 s configured, a hang is what this catches
        assert not thread.is_alive(), "the request hung past the configured timeout"
    status, elapsed = outcome[0]
    print(f"silent Redis, socket_timeout 0.2 s: 503 after {elapsed:.2f} s")
    assert status == 503


# -- SQLite busy ----------------------------------------------------------------------------------


def sqlite_browser(
    tmp_path: Path, clock: FrozenClock, stores: list[Store], busy_ms: int
) -> tuple[Browser, Path]:
    path = tmp_path / "reg.sqlite3"
    store = SqliteStore(str(path), clock=clock, busy_timeout=busy_ms / 1000)
    stores.append(store)
    return browser_on(store, tmp_path, clock), path


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's long writer, as SQLite sees it. In WAL mode ``BEGIN EXCLUSIVE`` is the
    same as ``BEGIN IMMEDIATE``: the file's one write lock; readers go on, every writer waits."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_sqlite_locked_past_the_busy_timeout_is_a_503_and_nothing_bound(
    tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    browser, path = sqlite_browser(tmp_path, clock, stores, busy_ms=200)
    wizard, token, secret = to_verify_step(browser)
    holder = hold_write_lock(path)
    try:
        code = pyotp.TOTP(secret).at(clock.now())
        r = browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
        assert r.status_code == 503 and r.get_json()["error"] == "store_unavailable"
        assert browser.authorize().status_code == 503 and browser.host.codes == {}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert browser.reg.store.list_methods("alice") == []
    assert browser.reg.store.list_audit(user_id="alice", event_prefix="method.") == []
    # The session survived the failed request: the same step, the same secret.
    assert browser.get_json(wizard).get_json()["page"] == "totp_verify"
    assert verify_and_finish(browser, wizard, token, secret) is not None


def test_sqlite_locked_for_a_moment_is_retried_and_the_registration_succeeds(
    tmp_path: Path, clock: FrozenClock, stores: list[Store]
) -> None:
    browser, path = sqlite_browser(tmp_path, clock, stores, busy_ms=30_000)
    wizard, token, secret = to_verify_step(browser)
    holder = hold_write_lock(path)
    # The lock's owner commits a little later, while the request waits in SQLite's busy handler.
    releaser = threading.Timer(0.3, lambda: (holder.execute("ROLLBACK"), holder.close()))
    releaser.start()
    try:
        code = verify_and_finish(browser, wizard, token, secret)
    finally:
        releaser.join()
    assert code is not None
    assert [m.kind.value for m in browser.reg.store.list_methods("alice")] == ["totp"]

"""Redis faults through the example IdP under gunicorn (real processes on loopback).

Redis (with AOF, ``appendfsync always``) is killed while the user is in the wizard: every page of
the middleware answers the 503 page, /authorize never issues a code, nothing is written; Redis is
started again and the same browser continues at the same step, on whichever worker. A Redis that
accepts connections but never answers: the request ends after the configured timeout (the test
asserts only that it finished, within a generous bound). The in-process counterparts, with and
without persistence and for SQLite, are in tests/web/test_web_redis_and_sqlite_faults.py.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_gunicorn_workers import Browser, choose_the_app, code_now, serve_example_idp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from redis_servers import RedisServer, require_redis  # noqa: E402

pytestmark = pytest.mark.e2e
AOF = ("--appendonly", "yes", "--appendfsync", "always")


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer(tmp_path / "redis", extra=AOF).start()
    yield server
    server.stop()


def to_verify_step(browser: Browser) -> tuple[requests.Response, str]:
    page, _ = browser.authorize()
    wizard = browser.login(page)
    assert "/security-info/wizard" in wizard.url, wizard.text[:300]
    setup = browser.submit(choose_the_app(browser, wizard), action="next")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', setup.text)
    assert secret is not None
    verify = browser.submit(setup, action="next")
    assert "try it out" in verify.text
    return verify, secret[1]


def test_redis_killed_mid_wizard_then_started_again(tmp_path: Path, redis_aof: RedisServer) -> None:
    served = serve_example_idp(tmp_path / "idp", redis_aof, workers=2)
    try:
        browser = Browser(served.url, "alice")
        verify, secret = to_verify_step(browser)
        redis_aof.kill()

        down = browser.submit(verify, action="verify", code=code_now(secret))
        assert down.status_code == 503 and down.headers["Retry-After"] == "30"
        assert "reach our security service" in down.text and "Nothing was changed" in down.text
        twin = browser.json(verify.url)
        assert twin.status_code == 503 and twin.json()["error"] == "store_unavailable"
        authorize, _ = browser.authorize()
        assert authorize.status_code == 503 and "code=" not in authorize.headers.get("Location", "")

        redis_aof.start()
        store = served.store()
        try:
            assert store.list_methods("alice") == []
            assert store.list_audit(user_id="alice", event_prefix="method.") == []
        finally:
            store.close()
        # The same page again, the same pending secret: the user carries on.
        added = browser.submit(verify, action="verify", code=code_now(secret))
        assert "successfully registered" in added.text, added.text[:300]
    finally:
        served.idp.stop()


def test_a_silent_redis_ends_each_request_after_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # accepts (the kernel does), never answers
        fake = RedisServer(tmp_path / "unused", port=silent.getsockname()[1])
        served = serve_example_idp(tmp_path / "idp", fake, workers=2, socket_timeout_ms=300)
        try:
            outcome: list[Any] = []

            def sign_in() -> None:
                started = time.monotonic()
                browser = Browser(served.url, "alice")
                page, _ = browser.authorize()  # no middleware session yet: the host's login
                response = browser.login(page)  # password_verified needs the store
                outcome.append((response.status_code, time.monotonic() - started))

            thread = threading.Thread(target=sign_in, daemon=True)
            thread.start()
            thread.join(timeout=30)  # generous: 0.3 s configured per store call
            assert not thread.is_alive(), "a request hung past the configured timeout"
        finally:
            served.idp.stop()
    status, elapsed = outcome[0]
    print(f"silent Redis, 0.3 s timeouts: sign-in answered {status} after {elapsed:.2f} s")
    # The host's login calls password_verified, which raises StoreUnavailable: the example IdP
    # answers its 503 page (closed, and clear).
    assert status == 503

"""The example IdP's own login pages (password, Temporary Access Pass) are open to anyone who knows
a user name: their throttle must not let a stranger lock the owner out (SECURITY.md case 57)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from idp_client import login, make_idp

from example_idp import create_app
from example_idp import db as db_module
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
OWNER = "192.0.2.10"
ATTACKER = "203.0.113.66"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000.0)


@pytest.fixture
def idp(tmp_path: Path, clock: FrozenClock) -> FlaskClient:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=config, clock=clock)
    app.extensions["combinedreg"].admin.tap.hasher = fast_hasher_for_tests()
    return app.test_client()


def _post(idp: FlaskClient, path: str, ip: str, **fields: str) -> int:
    """GET the form for its CSRF token, then POST it, both from ``ip``; the status code."""
    html = idp.get(path, environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    data = {"csrf_token": token.group(1), "next": "/", **fields}
    return idp.post(path, data=data, environ_base={"REMOTE_ADDR": ip}).status_code


def _password(idp: FlaskClient, ip: str, password: str, user: str = "alice") -> int:
    return _post(idp, "/login", ip, username=user, password=password)


def test_wrong_passwords_from_one_address_refuse_it_not_the_owner(idp: FlaskClient) -> None:
    statuses = [_password(idp, ATTACKER, "wrong") for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert _password(idp, ATTACKER, "alice") == 429, "that address waits, even with the password"
    assert _password(idp, OWNER, "alice") == 302, "the owner, elsewhere, signs in"


def test_wrong_passes_do_not_refuse_the_password(idp: FlaskClient) -> None:
    for _ in range(8):
        _post(idp, "/login/tap", OWNER, username="alice", **{"pass": "AAAA-AAAA-AAAA-AAAA"})
    assert _post(idp, "/login/tap", OWNER, username="alice", **{"pass": "AAAA"}) == 429
    assert _password(idp, OWNER, "alice") == 302


def test_many_addresses_together_refuse_a_name_for_one_window_only(
    idp: FlaskClient, clock: FrozenClock
) -> None:
    for n in range(10):
        for _ in range(5):
            assert _password(idp, f"198.51.100.{n}", "wrong") == 401
    assert _password(idp, OWNER, "alice") == 429
    clock.advance(301)
    assert _password(idp, OWNER, "alice") == 302


def test_a_login_without_failures_reads_the_counters_once_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22.5: the three counters are read in one query, and a success with nothing to clear
    takes no write lock (the old code ran three queries, then BEGIN IMMEDIATE, DELETE, COMMIT)."""
    statements: list[str] = []
    connect = sqlite3.connect

    def tracing(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        # The IdP's own database: the middleware's store writes the new session and its audit
        # event in one transaction of its own (BEGIN, tests/web/test_web_sqlite_statements.py).
        if str(args[0] if args else kwargs.get("database", "")).endswith("idp.sqlite3"):
            conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(db_module.sqlite3, "connect", tracing)
    client = make_idp(tmp_path)
    login(client)  # the seed file's hash is remade with idp.toml's parameters (a write)
    statements.clear()
    login(client)
    counters = [s for s in statements if "login_failures" in s]
    # One: the success reuses what the check found (decision 203; the old code read again).
    assert len(counters) == 1, counters
    assert not [s for s in statements if s.startswith(("BEGIN", "DELETE"))], statements


def test_a_success_still_clears_the_users_failures_but_not_the_addresss(
    idp: FlaskClient, clock: FrozenClock
) -> None:
    """Four wrong passwords from the owner's address, a right one, then four more wrong: the
    success cleared the four (the pair's limit is five), so the owner is not refused."""
    allowed = idp.application.extensions["example_idp"].settings.login_failures_allowed
    for _ in range(allowed - 1):
        assert _password(idp, OWNER, "wrong") == 401
    assert _password(idp, OWNER, "alice") == 302
    for _ in range(allowed - 1):
        assert _password(idp, OWNER, "wrong") == 401
    assert _password(idp, OWNER, "alice") == 302


def test_failures_older_than_the_window_never_refuse(idp: FlaskClient, clock: FrozenClock) -> None:
    """A success after the window leaves the old failures (nothing to clear in the window): they
    count for nothing."""
    settings = idp.application.extensions["example_idp"].settings
    for _ in range(settings.login_failures_allowed - 1):
        assert _password(idp, OWNER, "wrong") == 401
    clock.advance(settings.login_window + 1)
    assert _password(idp, OWNER, "alice") == 302
    for _ in range(settings.login_failures_allowed - 1):
        assert _password(idp, OWNER, "wrong") == 401
    assert _password(idp, OWNER, "alice") == 302

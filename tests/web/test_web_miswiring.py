"""Issue 18.2: each mis-wiring that used to give a silent login loop now names its likely cause
in the log (docs/troubleshooting.md), and each guard decision has a DEBUG line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask, redirect, request
from plain_wsgi_host import DictDirectory
from webtest import T0, base_config
from werkzeug.test import Client

from oidc_combinedreg import CombinedRegistration, DirectoryUser, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.sqlite import SqliteStore

PEER = {"REMOTE_ADDR": "127.0.0.1"}


class Endpoint:
    """The AuthorizationEndpoint contract, answering errors with a plain redirect."""

    def error_response(self, environ: Any, params: Any, error: str, description: str) -> Any:
        def app(environ: Any, start_response: Any) -> Iterable[bytes]:
            start_response("302 Found", [("Location", f"https://rp.example.test/cb?error={error}")])
            return [b""]

        return app

    def effective_params(self, environ: Any, params: Any) -> Any:
        return params


class TinyHost:
    """A host whose authorization endpoint lives at ``endpoint`` and that passes
    ``login_as(name)`` to password_verified(): the two knobs of the mis-wirings below."""

    def __init__(self, endpoint: str = "/authorize", login_as: Any = lambda name: name) -> None:
        self.endpoint, self.login_as = endpoint, login_as
        self.reg: CombinedRegistration | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.reg is not None
        path = environ["PATH_INFO"]
        if path == "/login":
            name = dict(parse_qsl(environ.get("QUERY_STRING", "")))["user"]
            self.reg.password_verified(environ, self.login_as(name))
            start_response("302 Found", [("Location", self.endpoint + "?client_id=demo")])
            return [b""]
        if path == self.endpoint:
            result = self.reg.sign_in_result(environ)
            where = "/login" if result is None else "https://rp.example.test/cb?code=c0de"
            start_response("302 Found", [("Location", where)])
            return [b""]
        start_response("404 Not Found", [])
        return [b""]


@pytest.fixture
def wire(tmp_path: Path) -> Any:
    stores: list[SqliteStore] = []

    def make(host: Any, directory: Any = None, **config: Any) -> CombinedRegistration:
        clock = FrozenClock(T0)
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        reg = CombinedRegistration(
            host,
            config=parse_config(base_config(tmp_path, **config)),
            directory=directory or DictDirectory({"bob": frozenset({"break-glass"})}),
            store=store,
            clock=clock,
            authorization=Endpoint(),
        )
        if isinstance(host, TinyHost):
            host.reg = reg
        return reg

    yield make
    for store in stores:
        store.close()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


class OnlyGetUser:
    def get_user(self, user_id: str) -> DirectoryUser | None:
        return None

    set_password = None  # an attribute, not a method


def test_a_directory_without_its_methods_is_refused_at_construction(wire: Any) -> None:
    with pytest.raises(TypeError, match=r"OnlyGetUser lacks set_password, set_per_user_mfa"):
        wire(TinyHost(), directory=OnlyGetUser())


def test_sign_in_result_at_a_path_the_guard_does_not_guard_is_named(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = TinyHost(endpoint="/oauth/authorize")
    client = Client(wire(host))  # web.authorize_path stays /authorize
    with caplog.at_level(logging.DEBUG, logger="oidc_combinedreg"):
        r = client.get("/login?user=bob", environ_base=PEER)
        r = client.get(r.headers["Location"], environ_base=PEER)
    assert r.headers["Location"] == "/login"  # the loop
    (warning,) = _warnings(caplog)
    assert "'/oauth/authorize'" in warning and "web.authorize_path = '/authorize'" in warning


def test_a_flask_app_wrapped_but_not_served_is_named(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    reg = wire(app)  # CombinedRegistration(app, ...), then the server runs app itself

    @app.get("/login")
    def login() -> Any:
        reg.password_verified(request.environ, "bob")
        return redirect("/authorize?client_id=demo")

    @app.get("/authorize")
    def authorize() -> Any:
        return redirect("/login" if reg.sign_in_result(request.environ) is None else "/done")

    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="oidc_combinedreg"):
        r = client.get("/login", environ_base=PEER)
        assert "combinedreg" not in r.headers.get("Set-Cookie", "")
        r = client.get("/authorize?client_id=demo", environ_base=PEER)
    assert r.headers["Location"] == "/login"
    first, second = _warnings(caplog)
    assert first.startswith("password_verified() was called for a request (GET /login)")
    assert second.startswith("sign_in_result() was called for a request (GET /authorize)")
    for text in (first, second):
        assert "did not pass through the middleware" in text
        assert "wraps a Flask object" in text and "app.wsgi_app = CombinedRegistration" in text


def test_a_user_id_the_directory_does_not_know_is_named(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    host = TinyHost(login_as=str.upper)  # the host passes "BOB", the directory knows "bob"
    client = Client(wire(host))
    with caplog.at_level(logging.WARNING, logger="oidc_combinedreg"):
        r = client.get("/login?user=bob", environ_base=PEER)
        r = client.get(r.headers["Location"], environ_base=PEER)
    assert r.headers["Location"] == "/login"
    (warning,) = _warnings(caplog)
    assert "password_verified() was given user id 'BOB'" in warning
    assert "get_user() does not know" in warning


def test_a_correct_wiring_logs_no_warning_and_a_debug_line_per_decision(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(wire(TinyHost()))
    with caplog.at_level(logging.DEBUG, logger="oidc_combinedreg"):
        r = client.get("/authorize?client_id=demo", environ_base=PEER)  # nobody signed in
        assert r.headers["Location"] == "/login"
        # alice must register MFA: the login's answer goes straight to the wizard (decision 226)
        r = client.get("/login?user=alice", environ_base=PEER)
        assert r.headers["Location"].startswith("/security-info/wizard?c=")
        r = client.get("/login?user=bob", environ_base=PEER)  # bob is exempt: cleared
        r = client.get(r.headers["Location"], environ_base=PEER)
        assert r.headers["Location"].endswith("code=c0de")
    assert _warnings(caplog) == []
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.startswith("authorize: nobody signed in") for line in lines), lines
    decision = next(line for line in lines if line.startswith("sign-in decision for 'alice'"))
    correlation = re.search(r"\[correlation ([^\]]+)\]", decision)
    assert correlation and correlation.group(1) != "-"
    sent = next(line for line in lines if line.startswith("authorize: 'alice'"))
    assert "to the middleware's page /security-info/wizard, from the login" in sent
    assert correlation.group(1) in sent
    assert any(line.startswith("authorize: 'bob' cleared") for line in lines), lines
    # never a secret: no session cookie value, no code
    cookie = client.get_cookie("combinedreg")
    assert cookie is not None and cookie.value not in caplog.text
    assert "c0de" not in caplog.text


class DisabledBob(DictDirectory):
    def get_user(self, user_id: str) -> DirectoryUser | None:
        user = super().get_user(user_id)
        return None if user is None else DirectoryUser(id=user.id, enabled=user_id != "bob")


def test_a_disabled_user_whose_password_the_host_accepted_is_named(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(wire(TinyHost(), directory=DisabledBob()))
    with caplog.at_level(logging.WARNING, logger="oidc_combinedreg"):
        r = client.get("/login?user=bob", environ_base=PEER)
        r = client.get(r.headers["Location"], environ_base=PEER)
    assert r.headers["Location"] == "/login"
    (warning,) = _warnings(caplog)
    assert warning.startswith("user 'bob' is disabled in the Directory")


def test_a_secure_cookie_set_over_plain_http_is_named_once(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reg = wire(TinyHost(), web={"secure_cookies": True})
    with caplog.at_level(logging.WARNING, logger="oidc_combinedreg"):
        Client(reg).get("/login?user=bob", base_url="http://localhost/", environ_base=PEER)
        assert _warnings(caplog) == []  # localhost: a browser keeps Secure cookies there
        for _ in range(2):
            Client(reg).get("/login?user=bob", base_url="http://idp.test/", environ_base=PEER)
        https = Client(reg).get("/login?user=bob", base_url="https://idp.test/", environ_base=PEER)
    assert "Secure" in https.headers["Set-Cookie"]
    (warning,) = _warnings(caplog)
    assert "plain http (host 'idp.test')" in warning and "web.secure_cookies = false" in warning


def test_sign_in_result_on_a_host_page_is_not_a_warning(
    wire: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A host page that asks (the example IdP's home page does) is not an authorization
    request at the wrong path: DEBUG only."""
    host = TinyHost(endpoint="/home")
    client = Client(wire(host))
    client.get("/login?user=bob", environ_base=PEER)
    with caplog.at_level(logging.DEBUG, logger="oidc_combinedreg"):
        client.get("/home", environ_base=PEER)
    assert _warnings(caplog) == []
    assert "read current_sign_in()" in caplog.text

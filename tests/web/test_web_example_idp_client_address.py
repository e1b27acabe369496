"""The example IdP behind a reverse proxy (docs/deploy.md): its per-address counters (the login
throttle, ``/par``, client authentication at ``/token``, ``/register``) and the outbox take the
caller's address from the one source the middleware uses, ``reg.client_ip(environ)`` (``[network]
trusted_proxies`` and ``forwarded_header``, SECURITY.md cases 1-6; decision 195).

With Flask's ``request.remote_addr`` every caller behind the proxy shared the proxy's address: a
stranger filling one counter refused everyone. A forwarded header is believed only from a trusted
proxy, and then only its right-most untrusted hop: a caller cannot write its way out of its count.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from idp_client import EXAMPLE_IDP, REDIRECT_URI, authorize_params, basic, pkce, registered
from werkzeug.test import Client, TestResponse

from example_idp import create_app
from example_idp.__main__ import _PretendProxy
from example_idp.outbox import EXTENSION, Outbox, create_demo_app
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests

#: the shipped combinedreg.toml trusts a reverse proxy on loopback ([network] trusted_proxies)
PROXY = "127.0.0.1"
STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


def idp_toml(tmp_path: Path, tables: dict[str, dict[str, int]]) -> Path:
    """The shipped idp.toml with keys of its tables changed."""
    text = (EXAMPLE_IDP / "idp.toml").read_text()
    for table, values in tables.items():
        head, sep, rest = text.partition(f"\n[{table}]\n")
        assert sep, table
        for key, value in values.items():
            pattern = rf"^{key} = \d+"
            rest, changed = re.subn(pattern, f"{key} = {value}", rest, count=1, flags=re.M)
            assert changed, key
        text = head + sep + rest
    path = tmp_path / "idp.toml"
    path.write_text(text)
    return path


def make_idp(
    tmp_path: Path, clock: FrozenClock, *, middleware: bool = True, **tables: dict[str, int]
) -> FlaskClient:
    config: Any = None
    if middleware:
        config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=config, clock=clock,
                     settings_path=idp_toml(tmp_path, tables))  # fmt: skip
    if middleware:
        app.extensions["combinedreg"].admin.tap.hasher = fast_hasher_for_tests()
    return app.test_client()


def via_proxy(client_ip: str, sent: str | None = None) -> dict[str, Any]:
    """A request as the proxy passes it on: the proxy appends the address it saw to whatever
    ``X-Forwarded-For`` the client sent itself (``sent``)."""
    forwarded = client_ip if sent is None else f"{sent}, {client_ip}"
    return {"environ_base": {"REMOTE_ADDR": PROXY}, "headers": {"X-Forwarded-For": forwarded}}


def direct(peer: str, sent: str | None = None) -> dict[str, Any]:
    """A request straight from ``peer`` (not a trusted proxy), with a header it wrote itself."""
    headers = {} if sent is None else {"X-Forwarded-For": sent}
    return {"environ_base": {"REMOTE_ADDR": peer}, "headers": headers}


# -- the login throttle ---------------------------------------------------------------------------


def login(idp: FlaskClient, path: str, how: dict[str, Any], secret: str) -> int:
    """GET the form for its CSRF token, then POST it for alice, both as ``how``; the status."""
    html = idp.get(path, **how).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    field = "pass" if path == "/login/tap" else "password"
    data = {"csrf_token": token.group(1), "next": "/", "username": "alice", field: secret}
    return idp.post(path, data=data, **how).status_code


@pytest.mark.parametrize(("path", "wrong"), [("/login", "wrong"), ("/login/tap", "AAAA-AAAA")])
def test_callers_behind_the_proxy_are_throttled_apart(
    tmp_path: Path, clock: FrozenClock, path: str, wrong: str
) -> None:
    idp = make_idp(tmp_path, clock)
    statuses = [login(idp, path, via_proxy(STRANGER), wrong) for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    # The owner, behind the same proxy, is not refused by the stranger's failures.
    assert login(idp, path, via_proxy(OWNER), wrong) == 401
    if path == "/login":
        assert login(idp, path, via_proxy(OWNER), "alice") == 302


def test_a_caller_cannot_dodge_the_login_throttle_with_its_own_forwarded_header(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock)
    # Straight to the IdP (an untrusted peer): its X-Forwarded-For is ignored.
    spoofed = [login(idp, "/login", direct(STRANGER, f"192.0.2.{n}"), "wrong") for n in range(7)]
    assert spoofed == [401] * 5 + [429] * 2
    assert login(idp, "/login", direct(STRANGER, OWNER), "alice") == 429
    # Through the proxy: what the client wrote is left of the address the proxy appended.
    other = "203.0.113.77"
    faked = [login(idp, "/login", via_proxy(other, f"192.0.2.{n}"), "wrong") for n in range(7)]
    assert faked == [401] * 5 + [429] * 2
    assert login(idp, "/login", via_proxy(other, OWNER), "alice") == 429
    assert login(idp, "/login", via_proxy(OWNER), "alice") == 302


# -- /par, /token, /register ---------------------------------------------------------------------


def push(idp: FlaskClient, reg: dict[str, Any], how: dict[str, Any]) -> TestResponse:
    _, challenge = pkce()
    params = authorize_params(reg["client_id"], code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    return idp.post("/par", data=params, **how)


def test_pushes_of_a_public_client_behind_the_proxy_count_per_caller(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, par={"address_pushes": 3})
    public = registered(idp, token_endpoint_auth_method="none")
    for _ in range(3):
        assert push(idp, public, via_proxy(STRANGER)).status_code == 201
    assert push(idp, public, via_proxy(STRANGER)).status_code == 429
    assert push(idp, public, via_proxy(STRANGER, OWNER)).status_code == 429
    assert push(idp, public, direct(STRANGER, OWNER)).status_code == 429  # the header ignored
    answer = push(idp, public, via_proxy(OWNER))
    assert answer.status_code == 201, answer.get_data(as_text=True)


def token(idp: FlaskClient, reg: dict[str, Any], secret: str, how: dict[str, Any]) -> TestResponse:
    return idp.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI,
              "code_verifier": "y"},
        headers={**how["headers"], "Authorization": basic({**reg, "client_secret": secret})},
        environ_base=how["environ_base"],
    )  # fmt: skip


def test_wrong_client_secrets_behind_the_proxy_refuse_only_the_guesser(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, client_auth={"address_failures": 3})
    victim, other = registered(idp), registered(idp)
    for _ in range(3):
        assert token(idp, victim, "guess", via_proxy(STRANGER)).status_code == 401
    assert token(idp, victim, "guess", via_proxy(STRANGER)).status_code == 429
    assert token(idp, other, "guess", via_proxy(STRANGER, OWNER)).status_code == 429
    # The client itself, behind the same proxy: authenticated, then only its code is wrong.
    answer = token(idp, victim, victim["client_secret"], via_proxy(OWNER))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"] == "invalid_grant"


def register(idp: FlaskClient, how: dict[str, Any]) -> TestResponse:
    return idp.post("/register", json={"redirect_uris": [REDIRECT_URI]}, **how)


def test_registrations_behind_the_proxy_count_per_caller(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, registration={"address_registrations": 3})
    for _ in range(3):
        assert register(idp, via_proxy(STRANGER)).status_code == 201
    assert register(idp, via_proxy(STRANGER)).status_code == 429
    assert register(idp, via_proxy(STRANGER, OWNER)).status_code == 429
    assert register(idp, via_proxy(OWNER)).status_code == 201


def test_without_the_middleware_no_proxy_is_trusted(tmp_path: Path, clock: FrozenClock) -> None:
    """``combinedreg_config=None``: no ``[network]`` to say which proxy to believe, so the peer is
    the caller and every forwarded header is ignored."""
    idp = make_idp(tmp_path, clock, middleware=False, registration={"address_registrations": 2})
    assert register(idp, via_proxy(STRANGER)).status_code == 201
    assert register(idp, via_proxy(OWNER)).status_code == 201
    assert register(idp, via_proxy("192.0.2.1")).status_code == 429  # all the proxy's
    assert register(idp, direct(OWNER, PROXY)).status_code == 201


# -- the demo's outbox ---------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app: Flask = create_demo_app(instance_path=tmp_path / "instance", combinedreg_config=config)
    try:
        yield app
    finally:
        app.extensions[EXTENSION + "_smtp"].stop()


def test_the_outbox_is_not_shown_through_the_proxy_to_another_machine(demo: Flask) -> None:
    """The proxy's peer address is loopback; the caller it forwards is not this machine."""
    outbox: Outbox = demo.extensions[EXTENSION]
    outbox.add("sms", "+14155550123", "", "Your reset code is 482913", "482913")
    client = demo.test_client()
    refused = client.get("/outbox", **via_proxy(STRANGER))
    assert refused.status_code == 403 and "482913" not in refused.get_data(as_text=True)
    assert client.get("/outbox", **via_proxy(STRANGER, PROXY)).status_code == 403
    assert client.get("/outbox", **direct(STRANGER, PROXY)).status_code == 403
    assert client.get("/outbox", **via_proxy(PROXY)).status_code == 200  # a browser here
    assert client.get("/outbox", **direct(PROXY)).status_code == 200


def test_the_demos_pretended_client_address_leaves_the_outbox_to_this_machine(demo: Flask) -> None:
    """``make demo DEMO_CLIENT_IP=...`` pretends every request comes through a proxy from that
    address, to try Conditional Access; the outbox, this machine's page, is still shown here."""
    outbox: Outbox = demo.extensions[EXTENSION]
    outbox.add("sms", "+14155550123", "", "Your reset code is 482913", "482913")
    seen: list[str | None] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(demo.extensions["combinedreg"].client_ip(environ))
        return demo.wsgi_app(environ, start_response)

    served = Client(_PretendProxy(app, "203.0.113.9"))
    assert served.get("/outbox", environ_base={"REMOTE_ADDR": PROXY}).status_code == 200
    assert served.get("/login", environ_base={"REMOTE_ADDR": PROXY}).status_code == 200
    assert seen == [PROXY, "203.0.113.9"]  # the IdP's own pages: the pretended address


def test_a_forwarded_header_the_proxy_cannot_vouch_for_counts_on_the_proxy_alone(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """An unreadable header from the trusted proxy (the client wrote junk, the proxy appended):
    the middleware answers the proxy's address (and logs it), so such requests share one counter
    and every caller with a readable one keeps its own."""
    idp = make_idp(tmp_path, clock, registration={"address_registrations": 2})
    for _ in range(2):
        assert register(idp, via_proxy(STRANGER, "not-an-address")).status_code == 201
    assert register(idp, via_proxy(STRANGER, "not-an-address")).status_code == 429
    assert register(idp, via_proxy(OWNER, "also-junk")).status_code == 429
    assert register(idp, via_proxy(OWNER)).status_code == 201

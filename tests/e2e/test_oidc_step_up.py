"""The example IdP under the middleware, seen by the independent ``oic`` RP library and by real
Chromium (issue 17 items 1, 3 and 4; issue 16 item 7; SECURITY.md case 60).

The IdP runs on a clock of its own that starts half an hour in the past, so a sign-in "then"
and a step-up "now" give ``oic`` real ages to check: oic enforces ``max_age`` and ``acr_values``
in ``Client.verify_id_token`` against the real time.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pyotp
import pytest
import requests
from oic.exception import PyoidcError
from oic.oic import Client
from oic.oic.message import AuthorizationErrorResponse, AuthorizationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_provider import REDIRECT_URI, Rp, _callback, _field
from werkzeug.serving import make_server

from example_idp import create_app
from oidc_combinedreg.clock import FrozenClock

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
PWD, MFA, PHR = "urn:combinedreg:acr:pwd", "urn:combinedreg:acr:mfa", "urn:combinedreg:acr:phr"
HALF_AN_HOUR = 1800


@dataclass(frozen=True)
class FrozenIdpServer:
    """This module's example IdP (the shape of conftest's, imported from no conftest: the
    tests/web one has the same module name)."""

    url: str
    app: Any
    instance_path: Path
    #: the server's clock: ``set``/``advance`` it
    clock: FrozenClock


def _serve(app: Any, name: str) -> tuple[str, Any, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return f"http://localhost:{server.server_port}", server, thread


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrozenIdpServer]:
    """An example IdP of this module's own, its clock half an hour behind the real time."""
    root = tmp_path_factory.mktemp("example-idp-step-up")
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", root / "combinedreg.toml")
    clock = FrozenClock(float(int(time.time()) - HALF_AN_HOUR))
    apps: list[Any] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[no-any-return]

    url, server, thread = _serve(dispatch, "example-idp-step-up")
    apps.append(
        create_app(
            instance_path=root / "instance", issuer=url, combinedreg_config=config, clock=clock
        )
    )
    try:
        yield FrozenIdpServer(url=url, app=apps[0], instance_path=root / "instance", clock=clock)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _now_for_real(idp: FrozenIdpServer) -> None:
    idp.clock.set(float(int(time.time())))


def _seed_totp(idp: FrozenIdpServer, user: str) -> str:
    """An authenticator app for ``user``, stored directly (its wizard has tests of its own)."""
    reg = idp.app.extensions["combinedreg"]
    setup, state = reg.info.totp.register_begin(user, user, None)
    code = pyotp.TOTP(setup.secret).at(reg.clock.now())
    reg.info.totp.register_complete(user, state, code, label="Phone", ip=None)
    idp.clock.advance(30)  # past the code just used
    return str(setup.secret)


def _rp(idp: FrozenIdpServer, *redirect_uris: str) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(idp.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI, *redirect_uris],
    )
    return Rp(idp=idp, client=client)


def _mfa(
    rp: Rp, page: requests.Response, secret: str, clock: FrozenClock, method_id: str | None = None
) -> requests.Response:
    """Verify at the MFA step with the app ``secret`` (``method_id``: its id, default: the
    method the page offers first)."""
    assert "/security-info/mfa" in page.url and "Verify your identity" in page.text, page.url
    form = {
        "csrf_token": _field(page.text, "csrf_token"),
        "method_id": method_id or _field(page.text, "method_id"),
        "code": pyotp.TOTP(secret).at(clock.now()),
    }
    response = rp.browser.post(page.url, data=form, allow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    return rp.follow(urljoin(page.url, response.headers["Location"]))


@dataclass
class Breakglass:
    """The break-glass account (no policy asks it for MFA) with an authenticator app."""

    rp: Rp
    secret: str
    issued: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def breakglass(idp: FrozenIdpServer) -> Breakglass:
    return Breakglass(rp=_rp(idp), secret=_seed_totp(idp, "breakglass"))


def test_step_up_with_a_live_session_asks_only_for_mfa_and_oic_accepts_max_age(
    idp: FrozenIdpServer, breakglass: Breakglass
) -> None:
    rp, secret = breakglass.rp, breakglass.secret
    # Half an hour ago: a password sign-in, nothing more asked of the break-glass account.
    query, state, verifier = rp.sign_in()
    then = rp.exchange(query, state, verifier)["id_token"]
    assert then["acr"] == PWD and then["amr"] == ["pwd"]
    signed_in_at = then["auth_time"]
    assert signed_in_at <= time.time() - HALF_AN_HOUR + 60
    # oic enforces max_age: that sign-in is too old for an RP asking for 10 minutes.
    with pytest.raises(PyoidcError, match="To old authentication"):
        rp.client.verify_id_token(then, {"max_age": 600})

    # Now the RP (or its API, RFC 9470) wants MFA within 10 minutes: the same browser is asked
    # for the MFA step only, and the new ID token has the new acr and auth_time.
    _now_for_real(idp)
    url, state, verifier = rp.authorize_url(acr_values=MFA, max_age="600")
    page = rp.follow(url)
    assert 'name="password"' not in page.text, "asked for the password again"
    now = rp.exchange(_callback(_mfa(rp, page, secret, idp.clock)), state, verifier)["id_token"]
    rp.client.verify_id_token(now, {"acr_values": [MFA], "max_age": 600})  # raises if not
    assert now["acr"] == MFA and set(now["amr"]) == {"pwd", "otp", "mfa"}
    assert now["auth_time"] == int(idp.clock.now()) and now["auth_time"] > signed_in_at


def test_prompt_none_with_a_pending_mfa_step_is_login_required_for_oic(
    idp: FrozenIdpServer,
) -> None:
    rp = _rp(idp)
    _seed_totp(idp, "breakglass")  # (a second app: the account has a method either way)
    query, state, verifier = rp.sign_in()  # a password-only session
    for method in ("GET", "POST"):
        url, state, _ = rp.authorize_url(prompt="none", acr_values=MFA)
        if method == "GET":
            response = rp.browser.get(url, allow_redirects=False)
        else:
            endpoint, _, body = url.partition("?")
            response = rp.browser.post(endpoint, data=parse_qs(body), allow_redirects=False)
        location = response.headers.get("Location", "")
        assert response.status_code == 302 and location.startswith(REDIRECT_URI), (
            method, response.status_code, response.text[:200],
        )  # fmt: skip
        answer = rp.client.parse_response(
            AuthorizationResponse, info=urlsplit(location).query, sformat="urlencoded"
        )
        assert isinstance(answer, AuthorizationErrorResponse), answer
        assert answer["error"] == "login_required" and answer["state"] == state


def test_an_essential_acr_nobody_can_meet_is_unmet_at_the_rp(
    idp: FrozenIdpServer, breakglass: Breakglass
) -> None:
    rp = breakglass.rp
    claims = {"id_token": {"acr": {"essential": True, "values": [PHR]}}}
    url, state, _ = rp.authorize_url(claims=claims)  # no security key: out of reach
    response = rp.follow(url)
    answer = rp.client.parse_response(
        AuthorizationResponse, info=urlsplit(response.headers["Location"]).query,
        sformat="urlencoded",
    )  # fmt: skip
    assert isinstance(answer, AuthorizationErrorResponse)
    assert answer["error"] == "access_denied" and answer["state"] == state
    assert "essential acr" in answer["error_description"]


def test_a_clients_registered_default_acr_values_get_mfa_without_acr_values(
    idp: FrozenIdpServer, breakglass: Breakglass
) -> None:
    """OIDC Registration 2: default_acr_values apply when the request names none; the
    break-glass account (no policy asks it for MFA) is asked for MFA for this client only."""
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(idp.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        default_acr_values=[MFA],
    )
    rp = Rp(idp=idp, client=client)
    # An app of its own (no code of it used yet), registered 30 s ago: the seeding moves the
    # clock past its code, to the real time (oic refuses an ID token issued in the future).
    idp.clock.set(float(int(time.time()) - 30))
    reg = idp.app.extensions["combinedreg"]
    before = {m.id for m in reg.info.mfa_methods("breakglass")}
    secret = _seed_totp(idp, "breakglass")
    (app_id,) = {m.id for m in reg.info.mfa_methods("breakglass")} - before
    url, state, verifier = rp.authorize_url()  # no acr_values
    page = rp.submit_login(rp.follow(url))
    answer = _mfa(rp, page, secret, idp.clock, method_id=app_id)
    claims = rp.exchange(_callback(answer), state, verifier)["id_token"]
    rp.client.verify_id_token(claims, {"acr_values": [MFA]})
    assert claims["acr"] == MFA


def test_cancel_sign_in_on_the_mfa_page_returns_access_denied(idp: FrozenIdpServer) -> None:
    rp = _rp(idp)
    _seed_totp(idp, "breakglass")
    url, state, _ = rp.authorize_url(acr_values=MFA)
    page = rp.submit_login(rp.follow(url))
    assert "/security-info/mfa" in page.url and "Cancel sign-in" in page.text
    action = re.search(r'<form method="post" action="([^"]+)" class="cancel-signin">', page.text)
    assert action is not None
    response = rp.browser.post(
        urljoin(page.url, action[1].replace("&amp;", "&")),
        data={"csrf_token": _field(page.text, "csrf_token")},
        allow_redirects=False,
    )
    answer = rp.client.parse_response(
        AuthorizationResponse, info=urlsplit(response.headers["Location"]).query,
        sformat="urlencoded",
    )  # fmt: skip
    assert isinstance(answer, AuthorizationErrorResponse)
    assert answer["error"] == "access_denied" and answer["state"] == state
    # The pending sign-in is gone: the next request starts at the login page.
    assert 'name="password"' in rp.follow(rp.authorize_url()[0]).text


# -- the hidden iframe: prompt=none in real Chromium (SECURITY.md case 60) ----------------------


@dataclass
class RpSite:
    """A relying party's own site (another port of localhost: same site, another origin)."""

    url: str
    iframe_src: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)


@pytest.fixture
def rp_site() -> Iterator[RpSite]:
    site = RpSite(url="")

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/cb":
            site.callbacks.append(environ.get("QUERY_STRING", ""))
            body = "<!doctype html><title>cb</title><p id=cb>back at the RP</p>"
        else:
            src = site.iframe_src[-1].replace("&", "&amp;").replace('"', "&quot;")
            body = f'<!doctype html><title>RP</title><iframe name="silent" src="{src}"></iframe>'
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body.encode()]

    url, server, thread = _serve(app, "rp-site")
    site.url = url
    try:
        yield site
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_prompt_none_in_a_hidden_iframe_ends_at_the_rp_with_an_error_and_no_page(
    idp: FrozenIdpServer, rp_site: RpSite, chromium_browser: Any
) -> None:
    """alice signs in with her password and stops at the MFA step; the RP's page then asks
    silently (prompt=none, acr_values for MFA) in a hidden iframe: the iframe must end at the
    RP's redirect URI with login_required and the state, and the IdP must serve it no page."""
    _now_for_real(idp)
    _seed_totp(idp, "alice")
    callback = f"{rp_site.url}/cb"
    rp = _rp(idp, callback)
    context = chromium_browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        url, _, _ = rp.authorize_url()
        page.goto(url)  # the IdP's login page (after the cookie check)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice")
        page.click("button[type=submit]")
        page.wait_for_url(f"{idp.url}/security-info/mfa**")

        silent = dict(parse_qs(urlsplit(url).query))
        state = "silent-state"
        silent.update(prompt=["none"], acr_values=[MFA], redirect_uri=[callback], state=[state])
        rp_site.iframe_src.append(f"{idp.url}/authorize?{urlencode(silent, doseq=True)}")
        pages_from_idp: list[tuple[str, int]] = []
        page.on(
            "response",
            lambda r: (
                pages_from_idp.append((r.url, r.status))
                if r.url.startswith(idp.url) and r.status == 200
                else None
            ),
        )
        with page.expect_event(
            "framenavigated", predicate=lambda f: f.url.startswith(callback)
        ) as navigated:
            page.goto(f"{rp_site.url}/")
        frame = navigated.value
        frame.wait_for_selector("#cb")
        answer = parse_qs(urlsplit(frame.url).query)
        assert answer["error"] == ["login_required"] and answer["state"] == [state]
        assert pages_from_idp == [], "the IdP served a page inside the silent iframe"
        assert len(rp_site.callbacks) == 1
        # The iframe carried alice's session (same site, SameSite=Lax): the guard decided on
        # her pending MFA step, not on an anonymous request.
        reg = idp.app.extensions["combinedreg"]
        answered = reg.store.list_audit(user_id="alice", event_prefix="signin.answered")
        assert [(e.detail["error"], e.detail["step"]) for e in answered] == [
            ("login_required", "mfa")
        ]
    finally:
        context.close()

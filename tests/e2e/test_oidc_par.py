"""Pushed (RFC 9126) and signed (RFC 9101) authorization requests against a real example IdP, with
the independent ``oic`` RP library: it discovers the IdP, registers with its own signing keys,
builds each authorization request, signs its request object, and verifies the ID token (signature
against the JWKS, issuer, audience, nonce). oic has no PAR call: the push is one form POST with
the client's credentials (RFC 9126 2.1) of the request oic built.

The point (SECURITY.md case 61): what the guard decides on is the pushed or signed request, not the
query, which holds only ``client_id`` and ``request_uri`` (or ``request``). dave is outside every
MFA policy: a plain request signs him in with his password alone, so only the pushed
``acr_values`` can make him do MFA.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pyotp
import pytest
import requests
from conftest import IdpServer, serve_example_idp
from oic.oic import Client
from oic.oic.message import AuthorizationRequest
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.keyio import build_keyjar
from test_oidc_provider import REDIRECT_URI, Rp, _callback, _field

from oidc_combinedreg.methods.questions import DEFAULT_QUESTIONS, QuestionAnswer

pytestmark = pytest.mark.e2e

USER = "dave"
MFA = "urn:combinedreg:acr:mfa"
_STEPS_AHEAD = iter([0, 1])


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """An example IdP of this module's own (dave's authenticator app is added below)."""
    with serve_example_idp(tmp_path_factory.mktemp("example-idp-par")) as server:
        yield server


@pytest.fixture(scope="module")
def dave_totp(idp: IdpServer) -> str:
    """dave registers an authenticator app and his security questions (the demo's password reset
    takes two methods), as he would on the manage page, so no registration interrupts his
    sign-ins; the app's secret."""
    reg = idp.app.extensions["combinedreg"]
    setup, state = reg.info.totp.register_begin(USER, USER, None)
    # The step before now: the sign-ins below use now and the next step (each step once).
    code = pyotp.TOTP(setup.secret).at(time.time() - 30)
    reg.info.totp.register_complete(USER, state, code, label="Phone", ip=None)
    answers = ("amsterdam harbour", "blue bicycle", "grandma rosa")
    pairs = [
        QuestionAnswer(question=q, answer=a)
        for q, a in zip(DEFAULT_QUESTIONS[:3], answers, strict=True)
    ]
    reg.info.questions.register(USER, pairs, ip=None)
    return str(setup.secret)


def rp_keys(folder: Path) -> tuple[Any, Any]:
    """oic's keys for the RP (it writes the key pair to files: into ``folder``, not the cwd)."""
    _, keyjar, kids = build_keyjar([{"type": "RSA", "use": ["sig"], "path": str(folder)}])
    return keyjar, kids


@pytest.fixture
def rp(idp: IdpServer, tmp_path: Path) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    keyjar, kids = rp_keys(tmp_path)
    client.keyjar = keyjar
    client.kid = kids
    client.provider_config(idp.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        jwks=keyjar.export_jwks(),  # public keys only
        request_object_signing_alg="RS256",
    )
    return Rp(idp=idp, client=client)


def push(rp: Rp, **extra: str) -> tuple[str, str, str]:
    """oic builds the request; it is pushed; (the /authorize URL with its request_uri, state,
    PKCE verifier)."""
    url, state, verifier = rp.authorize_url(**extra)
    request = AuthorizationRequest().from_urlencoded(urlsplit(url).query)
    endpoint = rp.client.provider_info["pushed_authorization_request_endpoint"]
    response = requests.post(
        endpoint,
        data=request.to_dict(),
        auth=(rp.client.client_id, rp.client.client_secret),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    pushed = response.json()
    query = {"client_id": rp.client.client_id, "request_uri": pushed["request_uri"]}
    authorize = rp.client.provider_info["authorization_endpoint"]
    return f"{authorize}?{urlencode(query)}", state, verifier or ""


def login(rp: Rp, page: requests.Response) -> requests.Response:
    assert 'name="password"' in page.text, page.text[:300]
    form = {"username": USER, "password": USER, "csrf_token": _field(page.text, "csrf_token"),
            "next": _field(page.text, "next")}  # fmt: skip
    response = rp.browser.post(urljoin(page.url, "/login"), data=form, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return rp.follow(urljoin(page.url, response.headers["Location"]))


def mfa(rp: Rp, page: requests.Response, secret: str) -> requests.Response:
    assert "/security-info/mfa" in page.url and "Verify your identity" in page.text, page.text[:300]
    # Each MFA in this module a newer time step: a code's step is never accepted twice (nor an
    # older one after a newer), and two sign-ins may fall within one step.
    code = pyotp.TOTP(secret).at(time.time() + 30 * next(_STEPS_AHEAD))
    data = {"csrf_token": _field(page.text, "csrf_token"),
            "method_id": _field(page.text, "method_id"), "action": "verify", "code": code}  # fmt: skip
    response = rp.browser.post(page.url, data=data, allow_redirects=False)
    assert response.status_code in (302, 303), response.text[:300]
    return rp.follow(urljoin(page.url, response.headers["Location"]))


def test_without_acr_values_dave_signs_in_with_his_password(rp: Rp, dave_totp: str) -> None:
    url, state, verifier = push(rp)
    query = _callback(login(rp, rp.follow(url)))
    claims = rp.exchange(query, state, verifier)["id_token"]
    assert claims["sub"] == USER and "otp" not in claims["amr"]


def test_pushed_acr_values_for_mfa_get_mfa(rp: Rp, dave_totp: str) -> None:
    url, state, verifier = push(rp, acr_values=MFA)
    assert "acr_values" not in url  # the query holds client_id and request_uri only

    page = login(rp, rp.follow(url))
    query = _callback(mfa(rp, page, dave_totp))

    claims = rp.exchange(query, state, verifier)["id_token"]  # signature, iss, aud, nonce checked
    assert claims["acr"] == MFA and {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["nonce"] == rp.nonces[state]


def test_a_pushed_prompt_none_gets_its_error_at_the_rp(rp: Rp, dave_totp: str) -> None:
    # Nobody signed in: login_required, with the pushed state, at the pushed redirect_uri.
    url, state, _ = push(rp, prompt="none")
    query = _callback(rp.browser.get(url, allow_redirects=False))
    assert query["error"] == ["login_required"] and query["state"] == [state]
    assert "code" not in query

    # Signed in with the password; the pushed request wants MFA without a page: an error again.
    login(rp, rp.follow(push(rp)[0]))
    url, state, _ = push(rp, prompt="none", acr_values=MFA)
    response = rp.browser.get(url, allow_redirects=False)
    assert response.status_code in (302, 303) and "code=" not in response.headers["Location"]
    query = _callback(response)
    assert query["error"] == ["login_required"] and query["state"] == [state]
    # The answer used the request_uri up: a second try is refused on a page.
    again = rp.browser.get(url, allow_redirects=False)
    assert again.status_code == 400 and "Location" not in again.headers


def test_a_signed_request_object_with_acr_values_gets_mfa(rp: Rp, dave_totp: str) -> None:
    """RFC 9101 by value: oic signs the request object with its registered key."""
    state = "signed-" + str(time.time_ns())
    rp.nonces[state] = "n-" + state
    # No PKCE here (a confidential client may omit it): oic copies only OpenID Connect's own
    # parameters into a request object, not code_challenge.
    args: dict[str, Any] = {"client_id": rp.client.client_id, "response_type": "code",
                            "scope": ["openid"], "redirect_uri": REDIRECT_URI, "state": state,
                            "nonce": rp.nonces[state], "acr_values": MFA}  # fmt: skip
    request = rp.client.construct_AuthorizationRequest(
        request_args=args, request_method="request", request_object_signing_alg="RS256"
    )
    # Outside the object only what OAuth needs (OIDC Core 6.1); acr_values only inside.
    query = {k: request[k] for k in ("client_id", "request")}
    query.update(response_type="code", scope="openid")
    url = f"{rp.client.provider_info['authorization_endpoint']}?{urlencode(query)}"

    page = login(rp, rp.follow(url))
    result = _callback(mfa(rp, page, dave_totp))

    claims = rp.exchange(result, state, None)["id_token"]
    assert claims["acr"] == MFA and result["state"] == [state]


def test_a_request_object_signed_with_another_key_is_refused(
    rp: Rp, dave_totp: str, tmp_path: Path
) -> None:
    rp.client.keyjar, _ = rp_keys(tmp_path / "other")
    args = {"client_id": rp.client.client_id, "response_type": "code", "scope": ["openid"],
            "redirect_uri": REDIRECT_URI, "state": "s", "nonce": "n"}  # fmt: skip
    request = rp.client.construct_AuthorizationRequest(
        request_args=args, request_method="request", request_object_signing_alg="RS256"
    )
    url = f"{rp.client.provider_info['authorization_endpoint']}?" + urlencode(
        {"client_id": rp.client.client_id, "request": request["request"]}
    )
    response = rp.browser.get(url, allow_redirects=False)
    assert "code=" not in response.headers.get("Location", "")
    assert "invalid_request_object" in response.text or "invalid_request_object" in parse_qs(
        urlsplit(response.headers.get("Location", "")).query
    ).get("error", [""])

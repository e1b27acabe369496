"""Pushed (RFC 9126) and signed (RFC 9101) authorization requests at the example IdP, through
Flask's test client (tests/e2e/test_oidc_par.py drives them with an independent RP library).
The parameters the IdP and the middleware's guard decide on are the pushed or signed ones, never
the query's (SECURITY.md case 61)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from idp_client import (
    authorize_params,
    basic,
    callback,
    exchange,
    follow,
    login,
    make_idp,
    pkce,
    registered,
)
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from example_idp.authz_requests import INTERACTION_LIFETIME, PUSH_LIFETIME
from oidc_combinedreg.clock import FrozenClock

ISSUER = "http://localhost:5000"  # create_app's default
MFA = "urn:combinedreg:acr:mfa"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


@pytest.fixture
def idp(tmp_path: Path, clock: FrozenClock) -> FlaskClient:
    return make_idp(tmp_path, clock)


def push(idp: FlaskClient, reg: dict[str, Any], **params: str) -> Any:
    return idp.post("/par", data=params, headers={"Authorization": basic(reg)})


def pushed(idp: FlaskClient, reg: dict[str, Any], **extra: str) -> tuple[str, str]:
    """Push a full request with PKCE: (the /authorize URL that uses it, the PKCE verifier)."""
    verifier, challenge = pkce()
    params = authorize_params(reg["client_id"], code_challenge=challenge,
                              code_challenge_method="S256", **extra)  # fmt: skip
    response = push(idp, reg, **params)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    url = "/authorize?" + urlencode(
        {"client_id": reg["client_id"], "request_uri": body["request_uri"]}
    )
    return url, verifier


def test_discovery_names_the_par_endpoint_and_request_objects(idp: FlaskClient) -> None:
    meta = idp.get("/.well-known/openid-configuration").get_json()
    assert meta["pushed_authorization_request_endpoint"] == f"{ISSUER}/par"
    assert meta["request_parameter_supported"] is True
    assert meta["request_uri_parameter_supported"] is False  # nothing is fetched from clients
    assert meta["claims_parameter_supported"] is True  # the guard reads id_token.acr requests


def test_a_pushed_request_signs_in_with_its_own_parameters(idp: FlaskClient) -> None:
    reg = registered(idp)
    response = push(idp, reg, **authorize_params(reg["client_id"], state="pushed-state"))
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == PUSH_LIFETIME

    url, verifier = pushed(idp, reg, state="pushed-state")
    login(idp, url)
    result = callback(follow(idp, url))
    assert result["state"] == "pushed-state"
    assert exchange(idp, reg, result["code"], verifier)["token_type"].lower() == "bearer"


def test_a_request_uri_is_used_once(idp: FlaskClient) -> None:
    reg = registered(idp)
    url, _ = pushed(idp, reg)
    login(idp, url)
    assert "code" in callback(follow(idp, url))
    again = follow(idp, url)
    assert again.status_code == 400 and "Location" not in again.headers
    assert "invalid_request_uri" in again.get_data(as_text=True)


def test_a_request_uri_expires_unless_used_in_time(idp: FlaskClient, clock: FrozenClock) -> None:
    reg = registered(idp)
    login(idp)
    late, _ = pushed(idp, reg)
    clock.advance(PUSH_LIFETIME + 1)
    response = follow(idp, late)
    assert response.status_code == 400 and "invalid_request_uri" in response.get_data(as_text=True)


def test_a_started_request_waits_for_the_login_and_mfa(
    idp: FlaskClient, clock: FrozenClock
) -> None:
    """Once at /authorize, the user has INTERACTION_LIFETIME for the login; then it is over."""
    reg = registered(idp)
    url, _ = pushed(idp, reg)
    page = follow(idp, url)  # the login page: the request has started
    assert 'name="password"' in page.get_data(as_text=True)
    clock.advance(PUSH_LIFETIME + 60)
    login(idp, url)
    assert "code" in callback(follow(idp, url))

    url, _ = pushed(idp, reg, prompt="login")
    follow(idp, url)
    clock.advance(INTERACTION_LIFETIME + 1)
    login(idp, url)
    assert "invalid_request_uri" in follow(idp, url).get_data(as_text=True)


def test_only_the_client_that_pushed_uses_its_request_uri(idp: FlaskClient) -> None:
    reg, other = registered(idp), registered(idp)
    url, _ = pushed(idp, reg)
    login(idp)
    stolen = url.replace(reg["client_id"], other["client_id"])
    response = follow(idp, stolen)
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize(
    ("auth", "params", "status", "error"),
    [
        pytest.param("wrong", {}, 401, "invalid_client", id="a wrong secret"),
        pytest.param("none", {}, 401, "invalid_client", id="no client authentication"),
        pytest.param("ok", {"request_uri": "urn:x"}, 400, "invalid_request", id="a request_uri"),
        pytest.param("ok", {"redirect_uri": "https://evil.example/cb"}, 400, "invalid_request",
                     id="an unregistered redirect_uri"),
        pytest.param("ok", {"response_mode": "fragment"}, 400, "invalid_request",
                     id="an unsupported response_mode"),
        pytest.param("ok", {"client_id": "someone-else"}, 400, "invalid_request",
                     id="another client_id"),
    ],
)  # fmt: skip
def test_a_bad_push_gets_a_json_error_never_a_redirect(
    idp: FlaskClient, auth: str, params: dict[str, str], status: int, error: str
) -> None:
    reg = registered(idp)
    headers = {"Authorization": basic(reg)} if auth == "ok" else {}
    if auth == "wrong":
        headers = {"Authorization": basic({**reg, "client_secret": "wrong"})}
    response = idp.post(
        "/par", data={**authorize_params(reg["client_id"]), **params}, headers=headers
    )
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    assert "Location" not in response.headers


# -- request objects (RFC 9101) ------------------------------------------------------------------


def _signed(key: Any, claims: dict[str, Any], alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def test_a_signed_request_object_replaces_the_query(idp: FlaskClient) -> None:
    key = RSAKey.generate_key(2048, auto_kid=True)
    reg = registered(idp, jwks={"keys": [key.as_dict(private=False)]},
                     request_object_signing_alg="RS256")  # fmt: skip
    verifier, challenge = pkce()
    claims = authorize_params(reg["client_id"], state="signed", code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    request_object = _signed(key, {**claims, "iss": reg["client_id"], "aud": ISSUER})
    # The query's state and prompt are not the request's: the object's are (RFC 9101 6.3).
    query = {"client_id": reg["client_id"], "response_type": "code", "scope": "openid",
             "state": "query-state", "prompt": "none", "request": request_object}  # fmt: skip
    url = "/authorize?" + urlencode(query)
    login(idp, url)
    result = callback(follow(idp, url))
    assert result["state"] == "signed"
    assert exchange(idp, reg, result["code"], verifier)["id_token"]


@pytest.mark.parametrize(
    "case",
    ["another key", "alg none", "another alg than registered", "for another issuer",
     "from another client", "no jwks registered"],
)  # fmt: skip
def test_a_request_object_that_fails_verification_is_refused(idp: FlaskClient, case: str) -> None:
    key = RSAKey.generate_key(2048, auto_kid=True)
    metadata: dict[str, Any] = {"jwks": {"keys": [key.as_dict(private=False)]},
                                "request_object_signing_alg": "RS256"}  # fmt: skip
    if case == "no jwks registered":
        metadata = {}
    reg = registered(idp, **metadata)
    claims: dict[str, Any] = {**authorize_params(reg["client_id"]), "aud": ISSUER}
    signer, alg = key, "RS256"
    if case == "another key":
        signer = RSAKey.generate_key(2048, auto_kid=True)
    elif case == "another alg than registered":
        signer, alg = ECKey.generate_key("P-256", auto_kid=True), "ES256"
    elif case == "for another issuer":
        claims["aud"] = "https://other-idp.example"
    elif case == "from another client":
        claims["iss"] = "someone-else"
    if case == "alg none":
        part = [base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
                for x in ({"alg": "none"}, claims)]  # fmt: skip
        request_object = f"{part[0]}.{part[1]}."  # unsigned (joserfc warns on making one)
    else:
        request_object = _signed(signer, claims, alg)
    login(idp)
    url = "/authorize?" + urlencode({"client_id": reg["client_id"], "request": request_object})
    response = follow(idp, url)
    text = response.get_data(as_text=True)
    assert "code=" not in response.headers.get("Location", "")
    assert "invalid_request" in text or "invalid_request" in response.headers.get("Location", "")


def test_effective_params_resolve_pushed_and_signed_requests_and_defaults(
    idp: FlaskClient,
) -> None:
    """What the middleware's guard decides on (host contract: effective_params)."""
    server = idp.application.extensions["example_idp"].server
    key = RSAKey.generate_key(2048, auto_kid=True)
    reg = registered(idp, jwks={"keys": [key.as_dict(private=False)]},
                     default_acr_values=[MFA], default_max_age=600)  # fmt: skip
    url, _ = pushed(idp, reg, prompt="none", acr_values="urn:combinedreg:acr:pwd", max_age="60")
    request_uri = url.split("request_uri=")[1].replace("%3A", ":")
    by_push = server.effective_params({"client_id": reg["client_id"], "request_uri": request_uri})
    assert by_push["prompt"] == "none" and by_push["acr_values"] == "urn:combinedreg:acr:pwd"
    assert by_push["max_age"] == "60" and "request_uri" not in by_push
    # Not spent by the guard's look: /authorize still answers it.
    assert server.effective_params({"client_id": reg["client_id"], "request_uri": request_uri})

    signed = _signed(key, {**authorize_params(reg["client_id"]), "max_age": 0,
                           "claims": {"id_token": {"acr": {"essential": True}}}})  # fmt: skip
    by_object = server.effective_params({"client_id": reg["client_id"], "request": signed})
    assert by_object["max_age"] == "0" and "acr_values" not in by_object  # claims names acr
    assert by_object["claims"] == '{"id_token":{"acr":{"essential":true}}}'

    plain = server.effective_params(authorize_params(reg["client_id"]))
    assert plain["acr_values"] == MFA and plain["max_age"] == "600"  # the client's defaults
    assert server.effective_params({"client_id": reg["client_id"], "request": "x.y.z"}) is None
    assert server.effective_params({"client_id": "nobody"}) is None


def test_a_signed_request_object_can_be_pushed(idp: FlaskClient) -> None:
    """RFC 9126 3: the push carries the request object; its verified claims are the request."""
    key = RSAKey.generate_key(2048, auto_kid=True)
    reg = registered(idp, jwks={"keys": [key.as_dict(private=False)]})
    verifier, challenge = pkce()
    claims = authorize_params(reg["client_id"], state="pushed-signed", code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    response = push(idp, reg, client_id=reg["client_id"], request=_signed(key, claims))
    assert response.status_code == 201, response.get_data(as_text=True)
    query = {"client_id": reg["client_id"], "request_uri": response.get_json()["request_uri"]}
    url = "/authorize?" + urlencode(query)
    login(idp, url)
    result = callback(follow(idp, url))
    assert result["state"] == "pushed-signed"
    assert exchange(idp, reg, result["code"], verifier)["id_token"]

    forged = _signed(RSAKey.generate_key(2048, auto_kid=True), claims)
    refused = push(idp, reg, client_id=reg["client_id"], request=forged)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request_object"


def test_a_client_that_requires_signed_requests_gets_no_plain_one(idp: FlaskClient) -> None:
    key = RSAKey.generate_key(2048, auto_kid=True)
    reg = registered(idp, jwks={"keys": [key.as_dict(private=False)]},
                     require_signed_request_object=True)  # fmt: skip
    login(idp)
    plain = follow(idp, "/authorize?" + urlencode(authorize_params(reg["client_id"])))
    assert "code=" not in plain.headers.get("Location", "")
    assert "invalid_request" in plain.get_data(as_text=True) + plain.headers.get("Location", "")
    assert push(idp, reg, **authorize_params(reg["client_id"])).status_code == 400


def test_a_request_uri_to_fetch_is_not_supported_not_ignored(idp: FlaskClient) -> None:
    """The IdP fetches nothing on a client's word (SSRF): only its own pushed request_uris."""
    reg = registered(idp)
    login(idp)
    params = authorize_params(reg["client_id"], request_uri="https://rp.example/request.jwt")
    response = follow(idp, "/authorize?" + urlencode(params))
    assert "code=" not in response.headers.get("Location", "")
    answer = response.get_data(as_text=True) + response.headers.get("Location", "")
    assert "request_uri_not_supported" in answer


def test_a_public_client_pushes_with_its_client_id_and_pkce(idp: FlaskClient) -> None:
    """RFC 9126 2: a public client authenticates as at the token endpoint, by client_id only;
    PKCE is required of it at the push as at /authorize."""
    reg = registered(idp, token_endpoint_auth_method="none")
    _, challenge = pkce()
    params = authorize_params(reg["client_id"], code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    assert idp.post("/par", data=params).status_code == 201
    without_pkce = idp.post("/par", data=authorize_params(reg["client_id"]))
    assert without_pkce.status_code == 400
    assert without_pkce.get_json()["error"] == "invalid_request"
    with_secret = idp.post("/par", data={**params, "client_secret": "guess"})
    assert with_secret.status_code in (400, 401)
    assert with_secret.get_json()["error"] == "invalid_client"

"""The example IdP's Dynamic Client Registration (OpenID Connect Dynamic Client Registration 1.0,
RFC 7591) and the redirect URIs of native apps (RFC 8252), through Flask's test client.

What discovery advertises is supported; what the IdP would only echo and then ignore is refused
with ``invalid_client_metadata`` (RFC 7591 3.2.2), so a client never believes it got encryption or
pairwise subjects it does not get."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from idp_client import (
    REDIRECT_URI,
    authorize_params,
    exchange,
    follow,
    login,
    make_idp,
    pkce,
    register,
    registered,
    signed_in_code,
)
from joserfc import jwt
from joserfc.jwk import KeySet


@pytest.fixture
def idp(tmp_path: Path) -> FlaskClient:
    return make_idp(tmp_path)


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"id_token_encrypted_response_alg": "RSA-OAEP"}, id="ID token encryption"),
        pytest.param({"id_token_encrypted_response_enc": "A128GCM"}, id="ID token enc alone"),
        pytest.param({"userinfo_encrypted_response_alg": "RSA-OAEP"}, id="userinfo encryption"),
        pytest.param({"userinfo_encrypted_response_enc": "A128GCM"}, id="userinfo enc alone"),
        pytest.param({"request_object_encryption_alg": "RSA-OAEP"}, id="request encryption"),
        pytest.param({"id_token_signed_response_alg": "HS256"}, id="ID token alg not RS256"),
        pytest.param({"userinfo_signed_response_alg": "HS256"}, id="userinfo alg not RS256"),
        pytest.param({"userinfo_signed_response_alg": "none"}, id="unsigned signed userinfo"),
        pytest.param({"request_object_signing_alg": "none"}, id="unsigned request objects"),
        pytest.param({"request_object_signing_alg": "HS256"}, id="request objects by secret"),
        pytest.param({"default_acr_values": ["urn:unknown:acr"]}, id="an acr nobody offers"),
        pytest.param({"default_acr_values": "urn:combinedreg:acr:mfa"}, id="acr not a list"),
        pytest.param({"subject_type": "pairwise"}, id="pairwise subjects"),
        pytest.param({"request_uris": ["https://rp.example/req.jwt"]}, id="request_uris"),
        pytest.param({"initiate_login_uri": "http://rp.example/login"}, id="http login uri"),
        pytest.param({"jwks": {"keys": "not a list"}}, id="a jwks that is not one"),
        pytest.param(
            {"jwks": {"keys": []}, "jwks_uri": "https://rp.example/jwks"}, id="jwks and jwks_uri"
        ),
    ],
)
def test_metadata_the_idp_would_ignore_is_refused(idp: FlaskClient, metadata: Any) -> None:
    response = register(idp, **metadata)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client_metadata"
    name = next(iter(metadata))
    assert name in response.get_json()["error_description"]


def test_discovery_advertises_what_registration_accepts(idp: FlaskClient) -> None:
    meta = idp.get("/.well-known/openid-configuration").get_json()
    assert meta["userinfo_signing_alg_values_supported"] == ["RS256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "none" not in meta["request_object_signing_alg_values_supported"]
    assert "id_token_encryption_alg_values_supported" not in meta
    assert meta["subject_types_supported"] == ["public"]
    reg = registered(
        idp,
        userinfo_signed_response_alg="RS256",
        id_token_signed_response_alg="RS256",
        request_object_signing_alg=meta["request_object_signing_alg_values_supported"][0],
        default_acr_values=[meta["acr_values_supported"][1]],
        initiate_login_uri="https://rp.example/login",
        require_auth_time=True,
        default_max_age=3600,
    )
    assert reg["userinfo_signed_response_alg"] == "RS256"
    assert reg["default_acr_values"] == [meta["acr_values_supported"][1]]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"redirect_uris=https://rp.example/cb", "application/x-www-form-urlencoded",
                     id="a form"),
        pytest.param(b"{not json", "application/json", id="broken JSON"),
        pytest.param(b'["https://rp.example/cb"]', "application/json", id="a JSON array"),
    ],
)  # fmt: skip
def test_a_body_that_is_no_json_object_gets_a_json_error(
    idp: FlaskClient, body: bytes, content_type: str
) -> None:
    response = idp.post("/register", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "invalid_request"


def test_signed_userinfo_is_a_jwt_from_the_idp_key_for_the_client(idp: FlaskClient) -> None:
    reg = registered(idp, userinfo_signed_response_alg="RS256")
    code, verifier = signed_in_code(idp, reg["client_id"])
    tokens = exchange(idp, reg, code, verifier)

    response = idp.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})

    assert response.status_code == 200
    assert response.mimetype == "application/jwt"
    keys = KeySet.import_key_set(idp.get("/jwks.json").get_json())
    claims = jwt.decode(response.get_data(as_text=True), keys, algorithms=["RS256"]).claims
    issuer = idp.get("/.well-known/openid-configuration").get_json()["issuer"]
    # OIDC Core 5.3.2: a signed response carries iss and aud.
    assert claims["sub"] == "breakglass" and claims["iss"] == issuer
    assert claims["aud"] == reg["client_id"]


def test_absent_claims_are_omitted_not_null(idp: FlaskClient) -> None:
    """breakglass has no office phone: the phone scope releases nothing, not phone_number null."""
    reg = registered(idp)
    code, verifier = signed_in_code(idp, reg["client_id"])
    tokens = exchange(idp, reg, code, verifier)
    info = idp.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).get_json()
    id_token = jwt.decode(
        tokens["id_token"], KeySet.import_key_set(idp.get("/jwks.json").get_json())
    ).claims
    assert "phone_number" not in info and "phone_number" not in id_token
    assert None not in info.values() and None not in id_token.values()


# -- RFC 8252: native apps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("com.example.app:/oauth2redirect", id="private-use scheme (7.1)"),
        pytest.param("com.example.app:/cb?x=1", id="private-use scheme with a query"),
        pytest.param("http://127.0.0.1/cb", id="IPv4 loopback (7.3)"),
        pytest.param("http://[::1]:8080/cb", id="IPv6 loopback with a port"),
        pytest.param("https://app.example.com/cb", id="claimed https URI (7.2)"),
    ],
)
def test_a_native_app_registers_its_redirect_uri(idp: FlaskClient, uri: str) -> None:
    reg = registered(idp, application_type="native", redirect_uris=[uri])
    assert reg["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    ("application_type", "uri"),
    [
        pytest.param("native", "myapp:/cb", id="a scheme that is no reverse domain (8.4)"),
        pytest.param("native", "http://app.example.com/cb", id="http that is not loopback"),
        pytest.param("native", "javascript:alert(1)", id="javascript"),
        pytest.param("web", "com.example.app:/cb", id="a web client with a private scheme"),
        pytest.param("native", "http://user@127.0.0.1/cb", id="user info in a loopback URI"),
    ],
)
def test_redirect_uris_rfc_8252_forbids_are_refused(
    idp: FlaskClient, application_type: str, uri: str
) -> None:
    response = register(idp, application_type=application_type, redirect_uris=[uri])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_redirect_uri"


def _authorize(idp: FlaskClient, client_id: str, redirect_uri: str, **extra: str) -> str:
    _, challenge = pkce()
    params = authorize_params(client_id, redirect_uri=redirect_uri, code_challenge=challenge,
                              code_challenge_method="S256", **extra)  # fmt: skip
    return "/authorize?" + urlencode(params)


def test_a_loopback_redirect_uri_matches_any_port(idp: FlaskClient) -> None:
    """RFC 8252 7.3: the app opens a port when it needs one; the URI is registered without it."""
    reg = registered(
        idp,
        application_type="native",
        token_endpoint_auth_method="none",
        redirect_uris=["http://127.0.0.1/cb", "com.example.app:/cb"],
    )
    login(idp)
    for uri in ("http://127.0.0.1:51004/cb", "com.example.app:/cb"):
        response = follow(idp, _authorize(idp, reg["client_id"], uri))
        assert response.status_code == 302
        assert response.headers["Location"].startswith(uri + "?code="), uri
    for uri in ("http://127.0.0.1:51004/other", "http://localhost:51004/cb", "com.example.app:/x"):
        response = follow(idp, _authorize(idp, reg["client_id"], uri))
        assert response.status_code == 400 and "Location" not in response.headers, uri


def test_a_web_clients_loopback_uri_keeps_its_exact_port(idp: FlaskClient) -> None:
    reg = registered(idp, redirect_uris=["http://127.0.0.1:8080/cb"])
    login(idp)
    response = follow(idp, _authorize(idp, reg["client_id"], "http://127.0.0.1:9090/cb"))
    assert response.status_code == 400 and "Location" not in response.headers


# -- the authorization endpoint ------------------------------------------------------------------


def test_a_request_without_redirect_uri_is_refused_on_a_page(idp: FlaskClient) -> None:
    """OIDC Core 3.1.2.1: redirect_uri is required, even for a client with one registered URI."""
    reg = registered(idp)
    login(idp)
    response = follow(idp, _authorize(idp, reg["client_id"], ""))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "redirect_uri" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["?client_id=nobody", ""], ids=["unknown client", "no client"])
def test_a_request_from_no_known_client_is_refused_on_a_400_page(
    idp: FlaskClient, query: str
) -> None:
    """No client, no redirect: a page that says so, 400 (Authlib's RFC 9101 code path says 404)."""
    login(idp)
    response = idp.get("/authorize" + query)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "invalid_client" in response.get_data(as_text=True)


@pytest.mark.parametrize("mode", ["fragment", "jwt", "web_message"])
def test_an_unsupported_response_mode_is_an_error_not_ignored(idp: FlaskClient, mode: str) -> None:
    reg = registered(idp)
    login(idp)
    response = follow(idp, _authorize(idp, reg["client_id"], REDIRECT_URI, response_mode=mode))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?") and "error=invalid_request" in location
    assert "code=" not in location and "state=st" in location
    meta = idp.get("/.well-known/openid-configuration").get_json()
    assert meta["response_modes_supported"] == ["query", "form_post"]


# -- OAuth 2.0 Form Post Response Mode -----------------------------------------------------------


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form id="form-post" method="post" action="([^"]+)"', html)
    assert action is not None, html
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return action.group(1), fields


def test_form_post_delivers_the_code_in_a_self_submitting_form(idp: FlaskClient) -> None:
    reg = registered(idp)
    verifier, challenge = pkce()
    params = authorize_params(reg["client_id"], response_mode="form_post",
                              code_challenge=challenge, code_challenge_method="S256")  # fmt: skip
    url = "/authorize?" + urlencode(params)
    login(idp, url)

    page = follow(idp, url)

    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    action, fields = _form(html)
    assert action == REDIRECT_URI and fields["state"] == "st"
    assert "Location" not in page.headers
    # No inline script (the pages' CSP allows none): a static file submits, a button without JS.
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None and "onload" not in html
    assert '<button type="submit">' in html
    script = re.search(r'<script src="([^"]+)"', html)
    assert script is not None
    with idp.get(script.group(1)) as js:  # a file response: closed, or pytest warns
        assert js.status_code == 200 and b".submit()" in js.data
    assert exchange(idp, reg, fields["code"], verifier)["token_type"].lower() == "bearer"


def test_form_post_delivers_errors_too(idp: FlaskClient) -> None:
    reg = registered(idp)
    params = authorize_params(reg["client_id"], response_mode="form_post", prompt="none")
    page = follow(idp, "/authorize?" + urlencode(params))  # nobody signed in
    action, fields = _form(page.get_data(as_text=True))
    assert action == REDIRECT_URI
    assert fields["error"] == "login_required" and fields["state"] == "st"


def test_form_post_to_an_apps_own_scheme_is_refused_by_query(idp: FlaskClient) -> None:
    """A form posted to a non-http URI (javascript:) would run in the IdP's origin."""
    reg = registered(idp, application_type="native", redirect_uris=["com.example.app:/cb"])
    login(idp)
    response = follow(
        idp, _authorize(idp, reg["client_id"], "com.example.app:/cb", response_mode="form_post")
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("com.example.app:/cb?error=invalid_request")


def test_form_post_keeps_the_redirect_uris_own_query_in_the_action(idp: FlaskClient) -> None:
    """The form posts to the redirect_uri as registered (query and all); only the response's
    parameters are fields (OAuth 2.0 Form Post Response Mode 2)."""
    uri = "https://rp.example/cb?tenant=a&x=1"
    reg = registered(idp, redirect_uris=[uri])
    login(idp)
    page = follow(idp, _authorize(idp, reg["client_id"], uri, response_mode="form_post"))
    action, fields = _form(page.get_data(as_text=True))
    assert action.replace("&amp;", "&") == uri
    assert set(fields) == {"code", "state"}

"""The example IdP through Flask's test client: register a client, sign in, follow redirects inside
the IdP, exchange a code. Shared by the tests of its OpenID endpoints."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from example_idp import create_app
from oidc_combinedreg.clock import Clock

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
REDIRECT_URI = "https://rp.example/cb"
USER = "breakglass"  # excluded from every interrupt: a password sign-in is enough


def make_idp(tmp_path: Path, clock: Clock | None = None) -> FlaskClient:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=config, clock=clock)
    return app.test_client()


def register(client: FlaskClient, **metadata: Any) -> TestResponse:
    body = {"redirect_uris": [REDIRECT_URI], **metadata}
    return client.post("/register", json=body)


def registered(client: FlaskClient, **metadata: Any) -> dict[str, Any]:
    response = register(client, **metadata)
    assert response.status_code == 201, response.get_data(as_text=True)
    data: dict[str, Any] = response.get_json()
    return data


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge)"""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(client_id: str, **extra: str) -> dict[str, str]:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "scope": "openid profile email phone",
        "redirect_uri": REDIRECT_URI,
        "state": "st",
        "nonce": secrets.token_urlsafe(8),
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def follow(client: FlaskClient, url: str, hops: int = 10) -> TestResponse:
    """GET url and follow redirects inside the IdP; stop at a page or a redirect elsewhere."""
    response = client.get(url)
    for _ in range(hops):
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303) or not location:
            return response
        parts = urlsplit(location)
        if not location.startswith("/") and parts.netloc != "localhost":
            return response  # at the client (an app's own scheme included)
        response = client.get(parts.path + ("?" + parts.query if parts.query else ""))
    raise AssertionError("too many redirects")


def login(client: FlaskClient, next_url: str = "/", user: str = USER) -> TestResponse:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {"csrf_token": token.group(1), "username": user, "password": user, "next": next_url}
    response = client.post("/login", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response


def callback(response: TestResponse) -> dict[str, str]:
    """The parameters of a redirect to the RP (query) as single values."""
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def signed_in_code(client: FlaskClient, client_id: str, **extra: str) -> tuple[str, str]:
    """Sign in (password) and run an authorization request: (code, PKCE verifier)."""
    verifier, challenge = pkce()
    params = authorize_params(
        client_id, code_challenge=challenge, code_challenge_method="S256", **extra
    )
    url = "/authorize?" + urlencode(params)
    login(client, url)
    result = callback(follow(client, url))
    assert "code" in result, result
    return result["code"], verifier


def exchange(client: FlaskClient, reg: dict[str, Any], code: str, verifier: str) -> dict[str, Any]:
    response = client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier},
        headers={"Authorization": basic(reg)},
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    data: dict[str, Any] = response.get_json()
    return data


def basic(reg: dict[str, Any]) -> str:
    pair = f"{reg['client_id']}:{reg['client_secret']}".encode()
    return "Basic " + base64.b64encode(pair).decode()

"""A demo relying party served by the IdP itself at /demo (client ``demo-rp`` in idp.toml).

It behaves like a separate application: it talks to the IdP over HTTP only (discovery, token, JWKS;
the server must be threaded), keeps its state in its own signed cookie scoped to /demo (the IdP
clears its session at login, which must not lose the RP's state), and verifies the ID token's
signature against the published JWKS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.wrappers import Response

from .host import current_idp

__all__ = ["CLIENT_ID", "bp"]

bp = Blueprint("demo", __name__, url_prefix="/demo")

CLIENT_ID = "demo-rp"
COOKIE = "demo_rp"
HIGHLIGHTED = ("amr", "acr", "auth_time")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="example-idp demo rp")


def _load() -> dict[str, Any]:
    try:
        data = _serializer().loads(request.cookies.get(COOKIE, ""), max_age=8 * 3600)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _save(response: Response, data: dict[str, Any]) -> Response:
    secure = current_idp().issuer.startswith("https:")
    response.set_cookie(
        COOKIE, _serializer().dumps(data), httponly=True, secure=secure, samesite="Lax",
        path="/demo",
    )  # fmt: skip
    return response


def _http() -> dict[str, Any]:
    return {"timeout": 10, "verify": current_app.config.get("DEMO_RP_VERIFY", True)}


def _provider() -> dict[str, Any]:
    url = f"{current_idp().issuer}/.well-known/openid-configuration"
    metadata: dict[str, Any] = requests.get(url, **_http()).json()
    return metadata


@bp.get("")
def home() -> ResponseReturnValue:
    data = _load()
    return render_template(
        "example_idp/demo.html",
        claims=data.get("claims"),
        kid=data.get("kid"),
        error=request.args.get("error"),
        highlighted=HIGHLIGHTED,
        # the development outbox (outbox.py), when the demo runs with one
        outbox="example_idp_outbox" in current_app.extensions,
    )


@bp.get("/login")
def login() -> ResponseReturnValue:
    issuer = current_idp().issuer
    verifier = secrets.token_urlsafe(48)
    challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    flow = {
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "verifier": verifier,
    }
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{issuer}/demo/callback",
        "scope": "openid profile email",
        "state": flow["state"],
        "nonce": flow["nonce"],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    # The demo page offers these so the middleware's step-up behaviour can be tried.
    for extra in ("prompt", "max_age", "acr_values"):
        if request.args.get(extra):
            params[extra] = request.args[extra]
    target = f"{_provider()['authorization_endpoint']}?{urlencode(params)}"
    return _save(redirect(target), {"flow": flow})


def _verified_claims(
    id_token: str, provider: dict[str, Any], nonce: str
) -> tuple[dict[str, Any], str]:
    keys = KeySet.import_key_set(requests.get(provider["jwks_uri"], **_http()).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        now=lambda: int(current_idp().clock.now()),
        leeway=60,
        iss={"essential": True, "value": provider["issuer"]},
        aud={"essential": True, "value": CLIENT_ID},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
    )
    registry.validate(token.claims)
    return dict(token.claims), str(token.header.get("kid", ""))


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    flow = _load().get("flow")
    if not isinstance(flow, dict) or not hmac.compare_digest(
        str(flow.get("state", "")).encode(), request.args.get("state", "").encode()
    ):
        return _save(redirect("/demo?error=state+mismatch+or+expired"), {})
    if "error" in request.args:
        return _save(redirect(f"/demo?{urlencode({'error': request.args['error']})}"), {})
    provider = _provider()
    response = requests.post(
        provider["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": request.args.get("code", ""),
            "redirect_uri": f"{current_idp().issuer}/demo/callback",
            "client_id": CLIENT_ID,
            "code_verifier": flow["verifier"],
        },
        **_http(),
    )
    body = response.json()
    if response.status_code != 200 or "id_token" not in body:
        return _save(redirect(f"/demo?{urlencode({'error': body.get('error', 'token')})}"), {})
    try:
        claims, kid = _verified_claims(body["id_token"], provider, flow["nonce"])
    except JoseError as exc:
        return _save(redirect(f"/demo?{urlencode({'error': f'bad ID token: {exc}'})}"), {})
    return _save(redirect("/demo"), {"claims": claims, "kid": kid, "id_token": body["id_token"]})


@bp.get("/logout")
def logout() -> ResponseReturnValue:
    data = _load()
    issuer = current_idp().issuer
    params = {"post_logout_redirect_uri": f"{issuer}/demo", "client_id": CLIENT_ID}
    if data.get("id_token"):
        params["id_token_hint"] = data["id_token"]
    target = f"{_provider()['end_session_endpoint']}?{urlencode(params)}"
    return _save(redirect(target), {})

"""Code issuance through the example IdP does each piece of work once (issue 22.1, 22.5): the view
reuses what the middleware's guard resolved in the same request (a pushed request, a verified
request object, the client), validates the request once, and checks the nonce once."""

from __future__ import annotations

import time
from hashlib import sha256
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
from joserfc.jwk import RSAKey

from example_idp.authz_requests import RESOLVED_KEY, RequestObjects
from oidc_combinedreg.clock import FrozenClock

ISSUER = "http://localhost:5000"


@pytest.fixture
def idp(tmp_path: Path) -> FlaskClient:
    return make_idp(tmp_path, FrozenClock(time.time()))


def _pkce_params(client_id: str, **extra: str) -> tuple[dict[str, str], str]:
    verifier, challenge = pkce()
    params = authorize_params(
        client_id, code_challenge=challenge, code_challenge_method="S256", **extra
    )
    return params, verifier


def test_a_code_reads_its_client_once_and_checks_its_nonce_once(
    idp: FlaskClient, statements: list[str]
) -> None:
    reg = registered(idp)
    login(idp)
    first, _ = _pkce_params(reg["client_id"])
    assert "code" in callback(idp.get("/authorize?" + urlencode(first)))  # the minute's purge
    params, verifier = _pkce_params(reg["client_id"])
    statements.clear()
    result = callback(idp.get("/authorize?" + urlencode(params)))
    clients = [s for s in statements if "FROM clients" in s]
    nonces = [s for s in statements if "FROM codes WHERE client_id" in s]
    # The old code read the client three times (twice in the guard's effective_params, outside
    # Flask's request context, once in the view) and checked the nonce twice (Authlib validated
    # the request in get_consent_grant and again in create_authorization_response).
    assert (len(clients), len(nonces)) == (1, 1), statements
    # All of it: the client, the user (the guard's get_user; Flask-Login's loader reads the
    # user and the password-reset cutoff in one query, the old code in two), the nonce, the
    # code's insert, a transaction of its own without BEGIN/COMMIT around it (decision 201:
    # 7 before). The user's row is read once, by the guard's Directory lookup, with the cutoff
    # the host's loader then finds in the request (decision 204: 5 before, the loader reading
    # it again). Earlier code made 12 (the three above, two reads of the user, the cutoff, a
    # second nonce check, and a purge of the day-old codes each time).
    assert len(statements) == 4, statements
    users = [s for s in statements if "user_overrides" in s or "session_cutoffs" in s]
    assert len(users) == 1, statements
    assert not [s for s in statements if s.startswith(("BEGIN", "COMMIT"))], statements
    assert exchange(idp, reg, result["code"], verifier)["id_token"]


def test_a_nonce_used_before_is_still_refused(idp: FlaskClient) -> None:
    """The one nonce check left still refuses a replayed nonce (OIDC Core 15.5.2: the IdP's own
    choice, as before)."""
    reg = registered(idp)
    login(idp)
    params, _ = _pkce_params(reg["client_id"], nonce="once")
    assert "code" in callback(idp.get("/authorize?" + urlencode(params)))
    again, _ = _pkce_params(reg["client_id"], nonce="once")
    refused = callback(idp.get("/authorize?" + urlencode(again)))
    assert refused["error"] == "invalid_request" and "code" not in refused


def _pushed_url(idp: FlaskClient, reg: dict[str, Any], params: dict[str, str]) -> str:
    response = idp.post("/par", data=params, headers={"Authorization": basic(reg)})
    assert response.status_code == 201, response.get_data(as_text=True)
    query = {"client_id": reg["client_id"], "request_uri": response.get_json()["request_uri"]}
    return "/authorize?" + urlencode(query)


def test_a_pushed_request_is_loaded_once_per_authorization_request(
    idp: FlaskClient, statements: list[str]
) -> None:
    reg = registered(idp)
    params, verifier = _pkce_params(reg["client_id"], state="pushed")
    url = _pushed_url(idp, reg, params)
    login(idp, url)
    statements.clear()
    result = callback(idp.get(url))
    loads = [s for s in statements if s.startswith("SELECT * FROM pushed_requests")]
    # The old code loaded it in the guard's effective_params and again in the view.
    assert len(loads) == 1, statements
    assert result["state"] == "pushed"
    assert exchange(idp, reg, result["code"], verifier)["id_token"]
    # Still one use: the view spends it when it answers (RFC 9126 4).
    again = follow(idp, url)
    assert again.status_code == 400 and "invalid_request_uri" in again.get_data(as_text=True)


def test_a_request_object_is_verified_once_per_authorization_request(
    idp: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    decode = RequestObjects._decode_request_object

    def counting(self: RequestObjects, request: Any, client: Any, raw: str) -> Any:
        decoded.append(raw)
        return decode(self, request, client, raw)

    monkeypatch.setattr(RequestObjects, "_decode_request_object", counting)
    key = RSAKey.generate_key(2048, auto_kid=True)
    reg = registered(idp, jwks={"keys": [key.as_dict(private=False)]})
    params, verifier = _pkce_params(reg["client_id"], state="signed")
    signed = jwt.encode({"alg": "RS256", "kid": key.kid}, {**params, "aud": ISSUER}, key)
    # The query's own state and prompt are not the request's: the object's are (RFC 9101 6.3).
    url = "/authorize?" + urlencode(
        {"client_id": reg["client_id"], "response_type": "code", "scope": "openid",
         "state": "query-state", "prompt": "none", "request": signed}
    )  # fmt: skip
    login(idp, url)
    decoded.clear()
    result = callback(idp.get(url))
    # The old code verified it in the guard's effective_params and again in the view.
    assert len(decoded) == 1
    assert result["state"] == "signed"
    assert exchange(idp, reg, result["code"], verifier)["id_token"]


def test_a_resolution_kept_for_other_parameters_is_not_used(idp: FlaskClient) -> None:
    """The view takes the guard's resolution only for exactly the parameters it sees itself;
    one kept for another request (here: another redirect URI) is ignored."""
    reg = registered(idp, redirect_uris=["https://rp.example/cb", "https://rp.example/other"])
    login(idp)
    params, _ = _pkce_params(reg["client_id"], state="real")
    server = idp.application.extensions["example_idp"].server
    elsewhere = {**params, "redirect_uri": "https://rp.example/other", "state": "forged"}
    query = urlencode(params)
    with idp.application.test_request_context("/authorize?" + query):
        environ = {RESOLVED_KEY: ({"client_id": reg["client_id"]}, elsewhere)}
        grant = server.consent_grant(None, environ)
        assert grant.redirect_uri == "https://rp.example/cb"
        assert grant.request.payload.state == "real"
        # For exactly these parameters it is what the view decides on.
        environ = {RESOLVED_KEY: (dict(params), elsewhere)}
        grant = server.consent_grant(None, environ)
        assert grant.redirect_uri == "https://rp.example/other"


def test_a_code_does_not_scan_the_codes_kept_for_a_day(
    tmp_path: Path, statements: list[str]
) -> None:
    """Used and expired codes are kept a day (a late replay is still recognised). The old code
    deleted the day-old ones at every issuance with a statement that read the whole table
    (no index on expires_at): 0.5 ms of CPU per code with 10,000 codes kept, 3 ms with 50,000.
    Now they are purged at most once a minute per process, through an index."""
    clock = FrozenClock(time.time())
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    login(idp)
    codes = idp.application.extensions["example_idp"].server.codes

    def issue() -> str:
        params, _ = _pkce_params(reg["client_id"])
        return callback(idp.get("/authorize?" + urlencode(params)))["code"]

    old = issue()
    statements.clear()
    issue()
    assert not [s for s in statements if s.startswith("DELETE FROM codes")], statements
    clock.advance(codes._lifetime + 86400 + 1)  # the first code is a day past its expiry
    login(idp)
    statements.clear()
    issue()
    purges = [s for s in statements if s.startswith("DELETE FROM codes")]
    assert len(purges) == 1, statements
    db = codes._db
    kept = db.fetch_one(
        "SELECT 1 FROM codes WHERE code_hash = ?", (sha256(old.encode()).hexdigest(),)
    )
    assert kept is None  # purged, not merely refused
    plan = db.fetch_all("EXPLAIN QUERY PLAN DELETE FROM codes WHERE expires_at < ?", (0,))
    assert any("USING" in row["detail"] and "INDEX" in row["detail"] for row in plan), [
        row["detail"] for row in plan
    ]


def test_the_guard_refuses_a_plain_request_of_a_client_that_must_sign(idp: FlaskClient) -> None:
    """effective_params answers a plain request (no request object, no pushed request) without
    Authlib's RFC 9101 step, and still refuses it for a client registered with
    require_signed_request_object (RFC 9101 10.5), as /authorize does."""
    key = RSAKey.generate_key(2048, auto_kid=True)
    strict = registered(idp, jwks={"keys": [key.as_dict(private=False)]},
                        require_signed_request_object=True)  # fmt: skip
    relaxed = registered(idp)
    server = idp.application.extensions["example_idp"].server
    assert server.effective_params(authorize_params(strict["client_id"])) is None
    assert server.effective_params(authorize_params(relaxed["client_id"])) is not None
    assert (
        server.effective_params({**authorize_params(relaxed["client_id"]), "client_id": ""}) is None
    )


def test_authlib_reads_the_request_itself_not_the_proxy(idp: FlaskClient) -> None:
    """Authlib reads an authorization request's values about thirty times: on Flask's request
    object, not through the ``flask.request`` proxy each time (issue 22.1)."""
    from flask import request

    server = idp.application.extensions["example_idp"].server
    with idp.application.test_request_context("/authorize?client_id=x&state=s"):
        made = server.create_oauth2_request(None)
        assert made._request is request._get_current_object()  # type: ignore[attr-defined]
        assert made.payload.data.get("state") == "s"


def test_authlib_does_not_make_the_requests_whole_url(
    idp: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authlib had werkzeug build each request's whole URL (about 17 us hot) only to check its
    scheme and host; the URL is made only when read."""
    from flask import Request

    reg = registered(idp)
    login(idp)
    built: list[str] = []
    url = Request.url

    def counting(self: Request) -> str:
        built.append(self.path)
        return url.fget(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(Request, "url", property(counting))
    params, verifier = _pkce_params(reg["client_id"])
    result = callback(idp.get("/authorize?" + urlencode(params)))
    assert built == []
    assert exchange(idp, reg, result["code"], verifier)["id_token"]
    server = idp.application.extensions["example_idp"].server
    with idp.application.test_request_context("/authorize?client_id=x", base_url="http://idp.test"):
        assert server.create_oauth2_request(None).uri == "http://idp.test/authorize?client_id=x"


def test_authlib_looks_the_requests_values_up_once(
    idp: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authlib read its payload's ``data`` (a property over werkzeug's cached ``values``) about
    thirty times per authorization request."""
    from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload

    reg = registered(idp)
    login(idp)
    read: list[object] = []

    def counting(self: FlaskOAuth2Payload) -> object:
        read.append(self)
        return self._request.values

    monkeypatch.setattr(FlaskOAuth2Payload, "data", property(counting))
    params, verifier = _pkce_params(reg["client_id"], state="kept")
    result = callback(idp.get("/authorize?" + urlencode(params)))
    assert read == []
    assert result["state"] == "kept"
    assert exchange(idp, reg, result["code"], verifier)["id_token"]


def test_the_code_asks_flask_login_for_the_user_once(
    idp: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """current_sign_in read the user through Flask-Login's proxy at each use (three lookups)."""
    import flask_login.utils

    reg = registered(idp)
    login(idp)
    asked: list[object] = []
    get_user = flask_login.utils._get_user

    def counting() -> object:
        asked.append(1)
        return get_user()

    monkeypatch.setattr(flask_login.utils, "_get_user", counting)
    params, verifier = _pkce_params(reg["client_id"])
    result = callback(idp.get("/authorize?" + urlencode(params)))
    assert len(asked) == 1
    assert exchange(idp, reg, result["code"], verifier)["id_token"]


@pytest.mark.parametrize(
    ("base", "refused"),
    [("http://idp.test", True), ("https://idp.test", False), ("http://127.0.0.1:5000", False)],
)
def test_authlibs_transport_check_still_refuses_plain_http(
    idp: FlaskClient, monkeypatch: pytest.MonkeyPatch, base: str, refused: bool
) -> None:
    from authlib.oauth2.rfc6749.errors import InsecureTransportError

    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    server = idp.application.extensions["example_idp"].server
    with idp.application.test_request_context("/authorize?client_id=x", base_url=base):
        if refused:
            with pytest.raises(InsecureTransportError):
                server.create_oauth2_request(None)
        else:
            assert server.create_oauth2_request(None).payload.data["client_id"] == "x"


def test_a_password_check_reads_the_users_override_row_once(
    idp: FlaskClient, statements: list[str]
) -> None:
    """The login reads a user's override row (a reset password's hash, the per-user MFA state)
    once; the old code read it twice, for the hash and again for the user."""
    login(idp)  # the seed file's hash is remade with idp.toml's parameters (a write)
    statements.clear()
    login(idp)
    # (Flask-Login's loader, for the browser signed in by the first login, reads it in its own
    # query with the password-reset cutoff: not the password check's.)
    reads = [s for s in statements if s.startswith(("SELECT password_hash", "SELECT per_user_mfa"))]
    assert len(reads) == 1, reads

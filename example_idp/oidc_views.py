"""The OpenID Provider's HTTP endpoints: discovery, JWKS, authorize, token, userinfo, registration,
end session."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import InvalidRequestError  # type: ignore[import-untyped]
from authlib.oauth2.rfc9101.errors import InvalidRequestUriError  # type: ignore[import-untyped]
from authlib.oidc.core.errors import LoginRequiredError  # type: ignore[import-untyped]
from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    session,
)
from flask.typing import ResponseReturnValue
from joserfc import jwt

from .authz_requests import REQUEST_URI_PREFIX, RESPONSE_MODES, PushRefused, check_response_mode
from .client_address import client_address
from .csrf import csrf_ok
from .grants import SignedIn, user_claims
from .host import current_idp, current_sign_in
from .login import LOGIN_FOR, REAUTHENTICATED, safe_next
from .rate_limits import Refused, refused_response

__all__ = ["bp"]

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/openid-configuration")
def discovery() -> ResponseReturnValue:
    return jsonify(current_idp().server.metadata)


@bp.get("/jwks.json")
def jwks() -> ResponseReturnValue:
    return jsonify(current_idp().server.signing_key.public_jwks)


def _deliver(response: Response, mode: str | None, redirect_uri: str) -> ResponseReturnValue:
    """The authorization response (a redirect carrying the code or the error) as the client
    asked: by query as Authlib made it, or as an auto-submitted form (Form Post Response Mode)
    posted to ``redirect_uri`` as it is, its own query included."""
    location = response.headers.get("Location")
    if mode != "form_post" or response.status_code != 302 or not location:
        return response
    # Authlib appends the response's parameters to the redirect URI's own query: keep those in
    # the form's action, post only the response's.
    fields = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    if fields[: len(own)] == own:
        fields = fields[len(own) :]
    page = make_response(
        render_template("example_idp/form_post.html", action=redirect_uri, fields=fields)
    )
    # The code is in the page: not cached, and not leaked as a Referer from it.
    page.headers["Cache-Control"] = "no-store"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def _authorize_error(error: OAuth2Error, mode: str | None = None) -> ResponseReturnValue:
    if error.redirect_uri:  # the client and its redirect URI were checked: tell the client
        if mode == "form_post" and urlsplit(error.redirect_uri).scheme not in ("http", "https"):
            mode = None
        response: Response = current_idp().server.handle_error_response(None, error)
        return _deliver(response, mode, error.redirect_uri)
    # Never redirect to an unchecked URI (open redirect): tell the user instead.
    page = render_template("example_idp/error.html", error=error.error, text=error.description)
    # Authlib's RFC 9101 extension says 404 for an unknown or missing client_id; the request is
    # what is wrong, not the URL, so the page answers 400 like every other refused request.
    status = error.status_code if error.status_code and error.status_code != 404 else 400
    return page, status


def _request_params() -> str:
    """This authorization request's parameters as a query: the URL's, then a POSTed form's
    (OIDC Core 3.1.2.1 gives both methods the same meaning; the middleware does the same)."""
    return urlencode(list(request.values.items(multi=True)))


def _request_url() -> str:
    """This authorization request as a GET URL (what the login page comes back to)."""
    return request.full_path if request.method != "POST" else f"{request.path}?{_request_params()}"


def _request_key() -> str:
    """Names this authorization request in the host session, by its parameters: the same for
    a POST and the GET it comes back as after the login (the middleware replays it unchanged).
    Made once per request (the view asks up to three times)."""
    key: str | None = g.get("example_idp_request_key")
    if key is None:
        key = hashlib.sha256(_request_params().encode()).hexdigest()[:32]
        g.example_idp_request_key = key
    return key


def _max_age(data: dict[str, Any], client_metadata: dict[str, Any]) -> int | None:
    raw = data.get("max_age", client_metadata.get("default_max_age"))
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequestError("'max_age' must be a number of seconds.") from None
    if value < 0:
        raise InvalidRequestError("'max_age' must not be negative.")
    return value


def _needs_password(signed_in: SignedIn | None, prompts: list[str], max_age: int | None) -> bool:
    if signed_in is None:
        return True
    reauthenticated = session.get(REAUTHENTICATED)
    if reauthenticated is not None and reauthenticated == _request_key():
        return False  # this very request already got its fresh password: do not loop
    if "login" in prompts:
        return True
    if max_age is None:
        return False
    elapsed = current_idp().clock.now() - signed_in.auth_time
    # auth_time has one-second resolution: max_age=0 must mean "always", not "unless same second".
    return max_age == 0 or elapsed > max_age


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    server = current_idp().server
    signed_in = current_sign_in()
    mode = request.values.get("response_mode")
    pushed = request.values.get("request_uri", "")
    pushed = pushed if pushed.startswith(REQUEST_URI_PREFIX) else ""
    try:
        # Validated once, with what the middleware's guard resolved (a pushed request, a
        # request object) in this same request: oauth.py consent_grant.
        grant = server.consent_grant(signed_in, request.environ)
        data = grant.request.payload.data
        prompts = str(data.get("prompt") or "").split()
        mode = data.get("response_mode")
        try:
            check_response_mode(data, grant.redirect_uri)
            max_age = _max_age(data, dict(grant.client.client_metadata))
            if _needs_password(signed_in, prompts, max_age) and "none" in prompts:
                raise LoginRequiredError()
        except OAuth2Error as error:
            error.redirect_uri = grant.redirect_uri
            error.state = grant.request.payload.state
            raise
    except OAuth2Error as error:
        if pushed:
            server.pushed.spend(pushed)  # answered: the pushed request is done
        return _authorize_error(error, mode if mode in RESPONSE_MODES else None)
    if _needs_password(signed_in, prompts, max_age):
        if "login" in prompts or max_age is not None:
            # Only a request that demands a fresh password needs its key through the login
            # (_needs_password, REAUTHENTICATED); kept for every request, it cost the plain
            # sign-in's code issuance one more write of the signed cookie to remove it.
            session[LOGIN_FOR] = _request_key()
        else:
            session.pop(LOGIN_FOR, None)  # an abandoned request's key must not get this password
        session.pop(REAUTHENTICATED, None)
        if session and "_user_id" not in session and session.get("_fresh") is not False:
            # Flask-Login ("basic" session protection) marks a session that has no signed-in
            # user's identifier as not fresh at its next request, which rewrote and re-signed
            # the cookie on the login page: the same mark now, in the cookie this response sets.
            # An empty session (a plain request of a signed-out browser) is left empty: no
            # cookie to sign here, or to open and check on the login page and its POST.
            session["_fresh"] = False
        # The sign-in form itself, here (decision 217), posting to /login with this request to
        # come back to: a redirect to /login cost every sign-in one more request, as Keycloak
        # and Entra ID also show theirs at the authorization endpoint.
        page = render_template(
            "example_idp/login.html", next_url=safe_next(_request_url()), error=None
        )
        return page, 200, {"Cache-Control": "no-store"}
    if pushed and not server.pushed.spend(pushed):
        # RFC 9126 4: one use. A parallel request (another tab) answered it first.
        spent = InvalidRequestUriError(description="The request_uri was used already.",
                                       state=grant.request.payload.state)  # fmt: skip
        spent.redirect_uri = grant.redirect_uri
        return _authorize_error(spent, mode)
    session.pop(LOGIN_FOR, None)
    session.pop(REAUTHENTICATED, None)
    # acr_values need nothing here: the middleware reads them from this request itself.
    response: Response = server.authorization_response(grant, signed_in)
    return _deliver(response, mode, grant.redirect_uri)


@bp.post("/par")
def pushed_authorization_request() -> ResponseReturnValue:
    """RFC 9126: the client pushes its authorization request and gets a request_uri for it."""
    server = current_idp().server
    try:
        request_uri, expires_in = server.push_request(client_address())
    except PushRefused as refused:
        # RFC 9126 2.3: 429 when a client sends more than allowed (rate_limits.py)
        return refused_response(refused)
    except OAuth2Error as error:
        error.redirect_uri = None  # RFC 9126 2.3: errors are JSON to the client, never redirects
        response: ResponseReturnValue = server.handle_error_response(None, error)
        return response
    body = {"request_uri": request_uri, "expires_in": expires_in}
    return jsonify(body), 201, {"Cache-Control": "no-store"}


@bp.post("/token")
def token() -> ResponseReturnValue:
    try:
        response: ResponseReturnValue = current_idp().server.create_token_response()
    except Refused as refused:  # too many failed client authentications (client_auth.py)
        return refused_response(refused)
    return response


def _bearer_error(status: int, error: str, description: str) -> ResponseReturnValue:
    header = f'Bearer error="{error}", error_description="{description}"'
    body = {"error": error, "error_description": description}
    return jsonify(body), status, {"WWW-Authenticate": header}


def _access_token() -> str | None:
    """From the Authorization header, or (RFC 6750 section 2.2) a POSTed form body."""
    header = request.headers.get("Authorization", "")
    from_header = header[7:].strip() if header[:7].lower() == "bearer " else None
    from_body = request.form.get("access_token") if request.method == "POST" else None
    if from_header and from_body:
        raise InvalidRequestError("Send the access token once, not in header and body.")
    return from_header or from_body


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> ResponseReturnValue:
    idp = current_idp()
    try:
        value = _access_token()
    except InvalidRequestError as error:
        return _bearer_error(400, "invalid_request", str(error.description))
    if not value:
        return "", 401, {"WWW-Authenticate": 'Bearer realm="userinfo"'}
    token = idp.server.tokens.find(value)
    if token is None:
        return _bearer_error(401, "invalid_token", "The access token is invalid or expired.")
    if "openid" not in token.scope.split():
        return _bearer_error(403, "insufficient_scope", "The token lacks the 'openid' scope.")
    user = idp.directory.get_user(token.user_id)
    if user is None or not user.enabled:
        return _bearer_error(401, "invalid_token", "The account is no longer available.")
    claims = dict(user_claims(user, token.scope))
    client = idp.server.clients.get(token.client_id)
    if client is None or not client.client_metadata.get("userinfo_signed_response_alg"):
        return jsonify(claims), 200, {"Cache-Control": "no-store"}
    # OIDC Core 5.3.2: a signed response is a JWT carrying iss and aud. Registration accepts
    # only the one algorithm the IdP's key signs with (RS256).
    key = idp.server.signing_key
    claims.update(iss=idp.issuer, aud=client.client_id)
    signed = jwt.encode({"alg": key.ALG, "kid": key.kid}, claims, key.private)
    return signed, 200, {"Content-Type": "application/jwt", "Cache-Control": "no-store"}


def _json_object() -> dict[str, Any] | None:
    """The request's JSON body if it is an object of text, else None. Flask's ``silent=True``
    lets a body nested past the parser's depth through (RecursionError: a 500), and
    ``"\\ud800"`` is valid JSON (RFC 8259 8.2) that is no text: stored, it would fail at the
    first page or response that encodes it."""
    try:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return None
        json.dumps(data, ensure_ascii=False).encode()
    except (RecursionError, UnicodeEncodeError):
        return None
    return data


@bp.post("/register")
def register() -> ResponseReturnValue:
    if _json_object() is None:
        # RFC 7591 3.1: the body is a JSON object. Answer in JSON, as every registration error.
        body = {"error": "invalid_request",
                "error_description": "The body must be a JSON object of text (application/json)."}  # fmt: skip
        return jsonify(body), 400, {"Cache-Control": "no-store"}
    try:
        response: ResponseReturnValue = current_idp().server.create_endpoint_response(
            "client_registration"
        )
    except Refused as refused:  # this address's registrations (registration_limits.py)
        return refused_response(refused)
    return response


@bp.route("/end-session", methods=["GET", "POST"])
def end_session() -> ResponseReturnValue:
    server = current_idp().server
    try:
        req = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        page = render_template("example_idp/error.html", error=error.error, text=error.description)
        return page, 400
    if req.needs_confirmation and not (request.method == "POST" and csrf_ok()):
        # No id_token_hint: anybody could have sent this link, so the user confirms (with CSRF).
        return render_template("example_idp/confirm_logout.html", args=request.values)
    response = server.create_endpoint_response("end_session", req)
    if response is None:
        return render_template("example_idp/logged_out.html")
    result: ResponseReturnValue = response
    return result

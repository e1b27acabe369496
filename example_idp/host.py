"""The IdP's runtime objects, and the places where the host talks to oidc_combinedreg: after the
password (``start_sign_in``), at the authorization endpoint (``current_sign_in``), at logout
(``end_sign_in``), and the :class:`AuthlibEndpoint` through which the middleware answers a relying
party itself (``prompt=none``, "Cancel sign-in", an unmet essential acr)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from flask import Flask, current_app, request, session
from flask_login import UserMixin, current_user, login_user, logout_user  # type: ignore[import-untyped]

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.signin import SignInResult, SignInState

from .clients import request_clients
from .directory import TomlDirectory
from .grants import SignedIn
from .oauth import IdpAuthorizationServer
from .settings import IdpSettings
from .throttle import LoginThrottle

__all__ = [
    "AuthlibEndpoint",
    "Idp",
    "LoginUser",
    "Registration",
    "current_idp",
    "current_sign_in",
    "end_sign_in",
    "start_sign_in",
]

#: what the host session remembers: when the password was checked (used without the middleware)
AUTH_TIME_KEY = "auth_time"


class Registration(Protocol):
    """The part of ``oidc_combinedreg.CombinedRegistration`` a host calls."""

    def password_verified(self, environ: dict[str, Any], user_id: str) -> None: ...

    def sign_in_result(self, environ: dict[str, Any]) -> SignInResult | None: ...

    def sign_out(self, environ: dict[str, Any]) -> None: ...

    def current_sign_in(self, environ: dict[str, Any]) -> SignInState | None: ...

    def verify_temporary_access_pass(
        self, environ: dict[str, Any], user_id: str, code: str
    ) -> bool: ...

    def client_ip(self, environ: dict[str, Any]) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class Idp:
    issuer: str
    settings: IdpSettings
    directory: TomlDirectory
    server: IdpAuthorizationServer
    throttle: LoginThrottle
    clock: Clock
    #: the middleware, or None when the IdP runs without it
    registration: Registration | None
    #: RFC 8176 value for the host's own password check when there is no middleware
    acr_password: str | None = None


def current_idp() -> Idp:
    idp: Idp = current_app.extensions["example_idp"]
    return idp


class LoginUser(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
    """Flask-Login's view of a directory user."""

    def __init__(self, user: DirectoryUser) -> None:
        self.user = user
        self.id = user.id

    @property
    def is_active(self) -> bool:
        return self.user.enabled


def start_sign_in(user: DirectoryUser, *, tap_verified: bool = False) -> None:
    """Right after the password was verified: tell the middleware, then start a new host session.

    ``tap_verified``: the middleware already checked a Temporary Access Pass instead (and started
    its sign-in), so there is no password to report.
    """
    idp = current_idp()
    if idp.registration is not None and not tap_verified:
        # Starts the middleware's sign-in (MFA, registration interrupt) with a new session id.
        idp.registration.password_verified(request.environ, user.id)
    session.clear()  # a new host session after the password: nothing carried over (no fixation)
    login_user(LoginUser(user))
    session[AUTH_TIME_KEY] = int(idp.clock.now())


def current_sign_in() -> SignedIn | None:
    """The user the IdP may issue a code for, with amr/acr/auth_time; None means "go to login"."""
    if "_user_id" not in session:
        # Nobody signed in to this host session: Flask-Login keeps its user id there, and this
        # IdP sets no remember-me cookie and has no request or header loader, so loading the
        # user (session protection's hash, its signals) could only say "anonymous". A host that
        # adds remember-me must drop this shortcut.
        return None
    # The user object once, not through Flask-Login's proxy at each use (each a lookup).
    login = current_user._get_current_object()
    if not login.is_authenticated:
        return None
    idp = current_idp()
    # Flask-Login's user_loader read this user from the directory for this very request.
    user = login.user if isinstance(login, LoginUser) else None
    if user is None or not user.enabled:
        return None
    if idp.registration is None:
        auth_time = session.get(AUTH_TIME_KEY)
        if not isinstance(auth_time, int):
            return None
        return SignedIn(user=user, amr=("pwd",), acr=idp.acr_password, auth_time=auth_time)
    result = idp.registration.sign_in_result(request.environ)
    if result is None or result.user_id != user.id:
        return None  # the middleware's sign-in is missing, pending or for someone else
    return SignedIn(user=user, amr=result.amr, acr=result.acr, auth_time=result.auth_time)


def end_sign_in() -> None:
    """Host logout and RP-initiated logout: the middleware's session and the host's."""
    idp = current_idp()
    if idp.registration is not None:
        idp.registration.sign_out(request.environ)
    logout_user()
    session.clear()


class AuthlibEndpoint:
    """The example IdP's side of ``oidc_combinedreg.authorization.AuthorizationEndpoint``."""

    def __init__(self, app: Flask, server: IdpAuthorizationServer) -> None:
        self.app = app
        self.server = server

    def error_response(
        self, environ: dict[str, Any], params: Mapping[str, str], error: str, description: str
    ) -> Any:
        """The authorization endpoint's own error answer for the request ``params``: Authlib
        validates the client and its redirect URI as at ``/authorize``; then the error goes to
        that URI with ``state``; an invalid client or URI gets the error page, no redirect."""
        from .authz_requests import RESPONSE_MODES
        from .oidc_views import _authorize_error

        # The request as the authorization endpoint saw it (``environ`` may be the middleware's
        # own POST, for a cancel): same host and scheme, the parameters from ``params`` only,
        # with prompt=none so that Authlib, finding nobody signed in, refuses it with
        # login_required at the redirect URI it validated (client, redirect URI, response type
        # and scope first: a request invalid in any of those gets that error instead).
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "localhost")
        # A pushed request (RFC 9126) or a request object (RFC 9101): its own parameters (H6).
        resolved = self.server.effective_params(params) or params
        self.server.spend_pushed(params)  # answered: a pushed request is done
        query = urlencode({**resolved, "prompt": "none"})
        base = f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}"
        with self.app.test_request_context("/authorize", base_url=base, query_string=query):
            try:
                self.server.get_consent_grant(end_user=None)
                answer = OAuth2Error(error="server_error", description="No redirect URI checked.")
            except OAuth2Error as refused:
                answer = refused
                if refused.redirect_uri and refused.error == "login_required":
                    answer.error, answer.description = error, description
            mode = resolved.get("response_mode")  # form_post too (OAuth 2.0 Form Post)
            response = self.app.make_response(
                _authorize_error(answer, mode if mode in RESPONSE_MODES else None)
            )
        response.headers["Cache-Control"] = "no-store"
        return response

    def client_name(self, client_id: str) -> str | None:
        """Optional (``oidc_combinedreg.authorization.ClientNames``): the client's registered
        ``client_name`` (OIDC Registration 2), for the user's "Recent activity" page."""
        client = self.server.clients.get(client_id)
        name = client.client_metadata.get("client_name") if client is not None else None
        return name if isinstance(name, str) else None

    def effective_params(
        self, environ: dict[str, Any], params: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        """The request as /authorize will read it: a pushed request (RFC 9126) or a request
        object (RFC 9101) resolved, the client's registered ``default_acr_values`` and
        ``default_max_age`` (OIDC Registration 2) filled in where it has none; None for a
        request /authorize refuses (unknown client, bad request object, spent request_uri).

        What it resolves and reads is kept in ``environ`` for the view of this same request
        (the client, a pushed request, a verified request object): nothing is read twice."""
        with request_clients(environ):
            return self.server.effective_params(params, environ)

"""The host contract at the authorization endpoint: what the middleware needs from the host's
OAuth layer to answer a relying party (RP) itself.

The middleware decides before the host's authorization endpoint sees a request (MFA, the
registration wizard, Conditional Access). Some decisions end the request with an error for the
RP instead of a page (OpenID Connect Core 1.0, 3.1.2.6):

* ``prompt=none`` when a step would need a page (``login_required``, ``interaction_required``);
* the user cancels a pending sign-in (``access_denied``);
* an essential ``acr`` the user cannot satisfy (``access_denied``: OIDC Core 5.5.1.1 calls it a
  failed authentication; RP libraries such as oic 1.7 refuse the newer
  ``unmet_authentication_requirements`` code as an unknown error).

Only the host knows its clients and their registered redirect URIs, so only the host can build
that error response; the middleware never redirects to a URI from the request. The host passes
an :class:`AuthorizationEndpoint` as ``CombinedRegistration(..., authorization=...)``; without
one the constructor refuses to start (docs/integration.md, "The authorization endpoint").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .policy.signin import Step, StepKind

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = [
    "ACCESS_DENIED",
    "INTERACTION_REQUIRED",
    "INVALID_REQUEST",
    "LOGIN_REQUIRED",
    "AuthorizationEndpoint",
    "ClientNames",
    "client_name",
    "require_endpoint",
    "rp_error",
]

#: OIDC Core 3.1.2.6: authentication (here: the MFA step, or no signed-in user) needs a page
LOGIN_REQUIRED = "login_required"
#: OIDC Core 3.1.2.6: some other page is needed (the wizard, re-confirm, a block, a reset)
INTERACTION_REQUIRED = "interaction_required"
#: RFC 6749 4.1.2.1: the user (here: "Cancel sign-in") or the server denied the request (here:
#: an essential ``acr`` the user cannot satisfy, OIDC Core 5.5.1.1)
ACCESS_DENIED = "access_denied"
#: RFC 6749 4.1.2.1, e.g. ``prompt=none`` together with another prompt value (OIDC Core 3.1.2.1)
INVALID_REQUEST = "invalid_request"


class AuthorizationEndpoint(Protocol):
    """Implemented by the host (``example_idp/host.py`` and ``examples/plain_wsgi_host.py``)."""

    def error_response(
        self,
        environ: WSGIEnvironment,
        params: Mapping[str, str],
        error: str,
        description: str,
    ) -> WSGIApplication:
        """The host's error response to the RP for the authorization request ``params``.

        ``params`` are the request's parameters as sent (first value of each; a POSTed request's
        body included; ``request_uri``/``request`` as they came): validate ``client_id`` and
        ``redirect_uri`` exactly as the authorization endpoint does, and answer with the error
        at that redirect URI, with ``state`` (and ``iss``, RFC 9207, if the host sends it), in
        the request's response mode. If the request cannot be validated (unknown client,
        unregistered redirect URI), never redirect: answer with the host's own error page.
        ``environ`` is the current request's (for a cancel it is the middleware's POST, not the
        authorization request): use it only for what the host needs from the server (script
        name, host, its app context), never for the parameters. The result is any WSGI
        application, e.g. a werkzeug/Flask ``Response``.
        """
        ...

    def effective_params(
        self, environ: WSGIEnvironment, params: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        """What the authorization request means, for the middleware's decision.

        Return ``params`` with a pushed request (RFC 9126 ``request_uri``) or a request object
        (RFC 9101 ``request``) resolved into its parameters, and the client's registered
        ``default_acr_values`` (OIDC Registration 2) and ``default_max_age`` filled in where the
        request has no ``acr_values``/``max_age``. Return None for a request the host will refuse
        anyway (unknown client, bad request object): the middleware then passes it to the host
        untouched, without a sign-in result, and the host answers with its error. Must not
        consume a one-time ``request_uri``: the same request reaches the host afterwards. A host
        without PAR, request objects or client defaults returns ``params`` as it is.
        """
        ...


class ClientNames(Protocol):
    """Optional, on the same object as :class:`AuthorizationEndpoint`: the display name of a
    client (OpenID Connect Dynamic Client Registration 2 ``client_name``), for the user's
    "Recent activity" page. None (or no such method): the page shows the client id."""

    def client_name(self, client_id: str) -> str | None: ...


def client_name(endpoint: object, client_id: str) -> str | None:
    """The host's name for ``client_id`` if it offers :class:`ClientNames`, else None."""
    name_of = getattr(endpoint, "client_name", None)
    name = name_of(client_id) if callable(name_of) else None
    return name if isinstance(name, str) else None


def require_endpoint(endpoint: Any) -> AuthorizationEndpoint:
    """At start-up: the host's endpoint, or a ``TypeError`` saying what is missing (a host that
    forgot it must not start, rather than show a page under ``prompt=none`` later)."""
    missing = [
        name
        for name in ("error_response", "effective_params")
        if not callable(getattr(endpoint, name, None))
    ]
    if endpoint is None or missing:
        what = "no authorization=" if endpoint is None else f"{type(endpoint).__name__} lacks"
        names = ", ".join(missing) if endpoint is not None else "error_response, effective_params"
        raise TypeError(
            f"CombinedRegistration(authorization=...): {what} {names}. The middleware answers a "
            "relying party itself (prompt=none, a cancelled sign-in, an unmet essential acr) and "
            "needs the host's validated error redirect for that: pass an object with "
            "error_response(environ, params, error, description) and effective_params(environ, "
            "params) (docs/integration.md, 'The authorization endpoint')."
        )
    checked: AuthorizationEndpoint = endpoint
    return checked


#: under prompt=none every pending step is an error for the RP (OIDC Core 3.1.2.6): the MFA step
#: is authentication (login_required), every other page is interaction (interaction_required)
_SILENT_ERRORS = {
    StepKind.MFA: (LOGIN_REQUIRED, "The sign-in needs a second factor."),
    StepKind.REGISTER: (INTERACTION_REQUIRED, "The user must register security info first."),
    # only a required campaign: a nudge that may be snoozed never blocks prompt=none (the
    # middleware clears the sign-in without it, docs/oidc.md)
    StepKind.CAMPAIGN: (INTERACTION_REQUIRED, "The user must add the authenticator app first."),
    StepKind.BLOCKED: (INTERACTION_REQUIRED, "The sign-in needs the user's attention."),
}


def rp_error(step: Step, *, silent: bool) -> tuple[str, str] | None:
    """The error the RP gets instead of the page of ``step`` (None: show the page)."""
    if step.kind is StepKind.BLOCKED and "acr_unmet" in step.reasons:
        # OIDC Core 5.5.1.1: an essential acr not met is a failed authentication, prompt or not
        # (access_denied: RP libraries refuse unmet_authentication_requirements as unknown).
        text = "None of the essential acr values can be met for this user."
        return ACCESS_DENIED, text
    return _SILENT_ERRORS.get(step.kind) if silent else None

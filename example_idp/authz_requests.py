"""Pushed (RFC 9126) and signed (RFC 9101) authorization requests.

A pushed request is stored under a one-time ``request_uri`` (urn:ietf:params:oauth:request_uri:...);
a signed one (``request``) is a JWT verified against the client's registered ``jwks`` with its
``request_object_signing_alg`` (Authlib's RFC 9101 extension, on joserfc). Either way the request
object's parameters replace those of the query (RFC 9101 6.3), for Authlib at /authorize and for
the middleware's guard alike (``IdpAuthorizationServer.effective_params``), so both decide on the
same ``prompt``, ``acr_values``, ``max_age`` and ``claims`` (SECURITY.md case 61).

A ``request_uri`` must be used within ``PUSH_LIFETIME`` seconds (the ``expires_in`` the client is
told, RFC 9126 2.2); once it reached /authorize the user has ``INTERACTION_LIFETIME`` seconds for the
login and MFA (the browser comes back to the same URL); it is spent when /authorize answers the
client. A request is purged as soon as it expired or was spent (at the next push), and each client
holds at most ``[par] pending_per_client`` of them (``par_limits.py``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload  # type: ignore[import-untyped]
from authlib.oauth2.rfc9101 import JWTAuthenticationRequest  # type: ignore[import-untyped]
from authlib.oauth2.rfc9101.errors import (  # type: ignore[import-untyped]
    InvalidRequestObjectError,
    InvalidRequestUriError,
    RequestUriNotSupportedError,
)
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from oidc_combinedreg.clock import Clock

from .db import Database
from .par_limits import ParSettings, PushLimits, PushRefused

if TYPE_CHECKING:
    from .clients import Client
    from .oauth import IdpAuthorizationServer

__all__ = [
    "CLIENT_AUTH",
    "INTERACTION_LIFETIME",
    "PUSH_LIFETIME",
    "REQUEST_OBJECT_ALGS",
    "REQUEST_URI_PREFIX",
    "RESOLVED_KEY",
    "RESPONSE_MODES",
    "PushRefused",
    "PushedRequests",
    "RequestObjects",
    "check_response_mode",
    "as_strings",
]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSH_LIFETIME = 90
INTERACTION_LIFETIME = 600
#: what a request object may be signed with: asymmetric only, never "none"
REQUEST_OBJECT_ALGS = ["RS256", "PS256", "ES256"]
#: OAuth 2.0 Multiple Response Types 2.1 and OAuth 2.0 Form Post Response Mode
RESPONSE_MODES = ("query", "form_post")
#: client authentication, never kept with a pushed request
CLIENT_AUTH = ("client_secret", "client_assertion", "client_assertion_type")
#: WSGI environ key: (the parameters as sent, what they resolved to) when the middleware's guard
#: resolved a pushed request or a request object, so that the view of the same request neither
#: loads the pushed request nor verifies the object again. No HTTP header maps to this key.
RESOLVED_KEY = "example_idp.resolved_request"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_response_mode(data: Mapping[str, Any], redirect_uri: str) -> None:
    mode = data.get("response_mode")
    if mode is not None and mode not in RESPONSE_MODES:
        raise InvalidRequestError(f"'response_mode' must be one of {list(RESPONSE_MODES)}.")
    if mode == "form_post" and urlsplit(redirect_uri).scheme not in ("http", "https"):
        # A form posted to a javascript: URI would run in the IdP's origin.
        raise InvalidRequestError("'form_post' needs an http(s) redirect_uri.")


def as_strings(params: Mapping[str, Any]) -> dict[str, str]:
    """Request object claims as request parameters: a JSON value (``claims``) as its JSON text,
    a number (``max_age``) as its digits (OIDC Core 6.1 gives both forms one meaning)."""
    return {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in params.items()
        if v is not None
    }


class PushedRequests:
    """The pushed authorization requests, in sqlite, by the SHA-256 of their ``request_uri``."""

    def __init__(self, db: Database, clock: Clock, settings: ParSettings | None = None) -> None:
        self._db = db
        self._clock = clock
        self.limits = PushLimits(db, clock, settings or ParSettings())

    def push(self, client_id: str, params: Mapping[str, Any], *, quota_key: str) -> str:
        """Keep the request; PushRefused when ``quota_key`` (the client, or a public client at
        one address) already holds ``pending_per_client`` pending ones. Purges the expired and
        spent first, in the same transaction as the count, so parallel pushes cannot pass the cap."""
        now = int(self._clock.now())
        cap = self.limits.settings.pending_per_client
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM pushed_requests WHERE used = 1"
                " OR (started_at IS NULL AND expires_at < ?) OR started_at < ?",
                (now, now - INTERACTION_LIFETIME),
            )
            pending, ends = conn.execute(
                "SELECT count(*), min(coalesce(started_at + ?, expires_at))"
                " FROM pushed_requests WHERE quota_key = ?",
                (INTERACTION_LIFETIME, quota_key),
            ).fetchone()
            if pending >= cap:
                # The oldest pending request is purged the second after it ends.
                raise PushRefused(ends + 1 - now, f"At most {cap} pending pushed requests.")
            conn.execute(
                "INSERT INTO pushed_requests (uri_hash, client_id, params, expires_at, quota_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (_digest(request_uri), client_id, json.dumps(dict(params)), now + PUSH_LIFETIME,
                 quota_key),
            )  # fmt: skip
        return request_uri

    def load(self, request_uri: str, client_id: str) -> dict[str, Any] | None:
        """The pushed parameters, or None: unknown, another client's, spent or expired. The first
        load starts the interaction window; the request stays usable until it is spent."""
        now = int(self._clock.now())
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM pushed_requests WHERE uri_hash = ?", (_digest(request_uri),)
            ).fetchone()
            if row is None or row["client_id"] != client_id or row["used"]:
                return None
            started = row["started_at"]
            if started is None:
                if now > row["expires_at"]:
                    return None
                conn.execute(
                    "UPDATE pushed_requests SET started_at = ? WHERE uri_hash = ?",
                    (now, row["uri_hash"]),
                )
            elif now > started + INTERACTION_LIFETIME:
                return None
        params: dict[str, Any] = json.loads(row["params"])
        return params

    def spend(self, request_uri: str) -> bool:
        """Mark the request used; False if it was spent already (by a parallel answer)."""
        changed = self._db.execute(
            "UPDATE pushed_requests SET used = 1 WHERE uri_hash = ? AND used = 0",
            (_digest(request_uri),),
        )
        return changed == 1


class RequestObjects(JWTAuthenticationRequest):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's RFC 9101 extension, plus the pushed requests' ``request_uri`` (RFC 9126 4).

    A ``request_uri`` to fetch from elsewhere is refused (``request_uri_not_supported``): the IdP
    makes no outbound requests on a client's word (SSRF)."""

    def __init__(self, server: IdpAuthorizationServer) -> None:
        super().__init__(support_request=True, support_request_uri=False)
        self._server = server

    def parse_authorization_request(self, server: Any, request: OAuth2Request) -> None:
        data = request.payload.data
        request_uri = data.get("request_uri")
        if not (isinstance(request_uri, str) and request_uri.startswith(REQUEST_URI_PREFIX)):
            super().parse_authorization_request(server, request)
            return
        state = data.get("state")
        if "request" in data:
            raise InvalidRequestError("Send 'request' or 'request_uri', not both.", state=state)
        params = self._server.pushed.load(request_uri, str(data.get("client_id") or ""))
        if params is None:
            raise InvalidRequestUriError(
                description="The request_uri is unknown, expired, spent or another client's.",
                state=state,
            )
        request.payload = BasicOAuth2Payload(params)

    def _get_raw_request_object(self, request: OAuth2Request, client: Client) -> str:
        if "request_uri" in request.payload.data:
            raise RequestUriNotSupportedError(state=request.payload.state)
        raw: str = super()._get_raw_request_object(request, client)
        return raw

    def _decode_request_object(self, request: OAuth2Request, client: Client, raw: str) -> Any:
        decoded = super()._decode_request_object(request, client, raw)
        claims = decoded.claims
        state = request.payload.state
        # RFC 9101 10.2: an object made for another server, or by another client, is not ours.
        aud = claims.get("aud")
        if aud is not None and self._server.issuer not in ([aud] if isinstance(aud, str) else aud):
            raise InvalidRequestObjectError(description="'aud' is not this issuer.", state=state)
        if claims.get("iss", client.client_id) != client.client_id:
            raise InvalidRequestObjectError(description="'iss' is not the client.", state=state)
        return decoded

    def resolve_client_public_key(self, client: Client) -> KeySet:
        jwks = client.client_metadata.get("jwks")
        if not jwks:
            raise InvalidRequestObjectError(description="The client registered no 'jwks'.")
        try:
            return KeySet.import_key_set(jwks)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidRequestObjectError(description=f"The client's jwks: {exc}") from None

    def get_request_object_signing_algorithms(self, client: Client) -> list[str]:
        registered = client.client_metadata.get("request_object_signing_alg")
        return [registered] if registered else list(REQUEST_OBJECT_ALGS)

    def get_server_metadata(self) -> dict[str, Any]:
        return self._server.metadata

    def get_client_require_signed_request_object(self, client: Client) -> bool:
        return bool(client.client_metadata.get("require_signed_request_object"))

    def requires_signed(self, client: Client) -> bool:
        """Whether a plain request of ``client`` is refused (RFC 9101 10.5: the client's or the
        server's ``require_signed_request_object``), as Authlib's extension decides it."""
        return self.get_client_require_signed_request_object(client) or bool(
            self.get_server_metadata().get("require_signed_request_object", False)
        )

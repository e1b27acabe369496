"""The Authlib authorization server, its endpoints (registration, end session) and the metadata."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.integrations.flask_oauth2.requests import (  # type: ignore[import-untyped]
    FlaskOAuth2Payload,
    FlaskOAuth2Request,
)
from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Request  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.util import extract_basic_authorization  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest  # type: ignore[import-untyped]
from flask import Flask, Request
from flask import request as flask_request
from joserfc.jwk import KeySet

from oidc_combinedreg.clock import Clock

from .authz_requests import (
    CLIENT_AUTH,
    PUSH_LIFETIME,
    REQUEST_OBJECT_ALGS,
    REQUEST_URI_PREFIX,
    RESOLVED_KEY,
    PushedRequests,
    RequestObjects,
    as_strings,
    check_response_mode,
)
from .client_address import client_address
from .client_auth import ClientAuthLimits
from .clients import SUPPORTED_SCOPES, Client, ClientStore
from .directory import TomlDirectory
from .grants import CodeGrant, CodeStore, IdToken, S256Only, TokenStore
from .keys import SigningKey
from .registration import AUTH_METHODS, RegistrationEndpoint
from .registration_limits import RegistrationLimits

__all__ = ["IdpAuthorizationServer", "provider_metadata"]


def provider_metadata(issuer: str, acr_values: tuple[str, ...]) -> dict[str, Any]:
    """The OpenID Provider Metadata published at /.well-known/openid-configuration."""
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "registration_endpoint": f"{issuer}/register",
        "end_session_endpoint": f"{issuer}/end-session",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SigningKey.ALG],
        "userinfo_signing_alg_values_supported": [SigningKey.ALG],
        "request_object_signing_alg_values_supported": REQUEST_OBJECT_ALGS,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "phone_number",
        ],  # fmt: skip
        # OIDC Core 5.5: the middleware honours an id_token acr request (essential, values);
        # other requested claims are voluntary and released by scope (5.5.1: no error for them)
        "claims_parameter_supported": True,
        # RFC 9101 by value; by reference only as a pushed request (RFC 9126), nothing fetched
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": False,
    }
    if acr_values:
        metadata["acr_values_supported"] = list(acr_values)
    return metadata


def _asks_acr(claims: Any) -> bool:
    """Whether a ``claims`` request names the ID token's acr (OIDC Core 5.5.1.1): then it, not the
    client's default_acr_values, says what the RP wants."""
    if isinstance(claims, str):
        try:
            claims = json.loads(claims)
        except ValueError:
            return False
    id_token = claims.get("id_token") if isinstance(claims, dict) else None
    return isinstance(id_token, dict) and "acr" in id_token


class _FlaskPayload(FlaskOAuth2Payload):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's Flask payload, the request's values read once into a dict.

    Authlib reads ``data`` about thirty times per authorization request (``get``, ``in``,
    ``[]``), each through a property, werkzeug's cached property and its combined multi-dict
    (the query's values, then the form's: Python at every read) otherwise. The dict holds what
    each of those reads answered: the first value of each name, the query's before the form's
    (``CombinedMultiDict.to_dict``). ``datalist`` (every value, for the duplicate-parameter
    check of RFC 6749 3.1) is read from the request itself."""

    data = None  # a plain attribute: the instance's own value, not Authlib's property

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.data = request.values.to_dict()

    @cached_property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, self._request.values.lists())


class _FlaskRequest(FlaskOAuth2Request):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's Flask request, its full URL made only if something reads ``uri``.

    Authlib makes werkzeug build the request's whole URL (every part re-quoted, then turned
    into an IRI: about 17 us hot) for every request, and reads it only to refuse plain http
    (``InsecureTransportError``), which the URL's scheme and host decide; none of the grants and
    endpoints the IdP uses reads it. The check runs here on the scheme and host the full URL
    starts with, so it refuses exactly the same requests.

    The headers are the request's, set after Authlib's ``__init__``: it keeps ``headers or {}``,
    and the truth of werkzeug's headers over a WSGI environ is their length, counted by turning
    every key of the environ into a header name (some forty behind gunicorn). A request always
    has headers (``Host``), so the ``{}`` was never taken."""

    def __init__(self, request: Request) -> None:
        OAuth2Request.__init__(
            self, method=request.method, uri=f"{request.scheme}://{request.host}/"
        )  # fmt: skip
        self.headers = request.headers
        self._request = request
        self.payload = _FlaskPayload(request)

    @property
    def uri(self) -> str:
        url: str = self._request.url
        return url

    @uri.setter
    def uri(self, checked: str) -> None:
        """``OAuth2Request.__init__`` sets the URL it checked: the origin only, see above."""


class IdpAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's Flask server, holding what the grants and endpoints need."""

    def __init__(
        self, app: Flask, *, issuer: str, clients: ClientStore, codes: CodeStore,
        tokens: TokenStore, directory: TomlDirectory, signing_key: SigningKey, clock: Clock,
        id_token_lifetime: int, metadata: Mapping[str, Any], pushed: PushedRequests,
        client_auth: ClientAuthLimits,
    ) -> None:  # fmt: skip
        super().__init__()
        self.issuer = issuer
        self.clients = clients
        self.codes = codes
        self.tokens = tokens
        self.directory = directory
        self.signing_key = signing_key
        self.clock = clock
        self.id_token_lifetime = id_token_lifetime
        self.metadata = dict(metadata)
        self.pushed = pushed
        self.client_auth = client_auth
        self.init_app(app, query_client=clients.get, save_token=lambda token, request: None)
        self.register_grant(CodeGrant, [S256Only(required=True), IdToken(self)])
        self.request_objects = RequestObjects(self)
        self.register_extension(self.request_objects)

    def authenticate_client(
        self, request: OAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> Client:
        """Authlib's client authentication (at /token and /par), counted (client_auth.py): over a
        limit Refused (429) before the secret is compared; a failure counts on the address and
        on the client named (RFC 6749 2.3.1)."""
        if not request.headers.get("Authorization", "").isascii():
            # Authlib decodes Basic credentials with base64.b64decode, which raises ValueError
            # (uncaught: a 500) on a non-ASCII string; such a header names no client and guesses
            # no secret (not counted): invalid_client, 401 for a header (RFC 6749 5.2).
            raise InvalidClientError(status_code=401)
        basic_id, basic_secret = extract_basic_authorization(request.headers)
        if not basic_secret and not request.form.get("client_secret"):
            # No secret, nothing guessed (a public client names itself, RFC 6749 2.1): neither
            # refused nor counted, so an address refused for wrong secrets (a NAT, a proxy, the
            # demo RP on the IdP's machine) still exchanges a public client's codes.
            return super().authenticate_client(request, methods, endpoint)  # type: ignore[no-any-return]
        ip = client_address()  # the middleware's, trusted proxies applied
        claimed = (basic_id, request.form.get("client_id"), request.payload.client_id)
        failed_here = self.client_auth.check(claimed, ip)
        try:
            client: Client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            self.client_auth.failed(claimed, ip)
            raise
        if client.client_id in failed_here:
            self.client_auth.succeeded(client.client_id, ip)
        return client

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Authlib's request on Flask's request object itself, not on the ``flask.request``
        proxy: Authlib reads the request's values some thirty times per authorization request,
        each a lookup through the proxy otherwise."""
        real = flask_request._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
        return _FlaskRequest(real)

    def resolve_request(self, params: Mapping[str, Any]) -> OAuth2Request:
        """An authorization request with a pushed request or a request object resolved (the
        parameters Authlib then works on). Raises OAuth2Error as /authorize would answer."""
        request = OAuth2Request("GET", f"{self.issuer}/authorize")
        request.payload = BasicOAuth2Payload(dict(params))
        self.request_objects.parse_authorization_request(self, request)
        return request

    def effective_params(
        self, params: Mapping[str, str], environ: dict[str, Any] | None = None
    ) -> dict[str, str] | None:
        """The parameters the middleware's guard decides on (host contract): the pushed request
        or the request object's instead of the query's, and the client's registered defaults
        where the request has none (OIDC Registration 2: default_acr_values, default_max_age).
        None: /authorize will refuse this request. Leaves a pushed request unspent.

        ``environ``: the guard's request; a pushed request or request object resolved here is
        kept in it (``RESOLVED_KEY``) for the view of the same request (:meth:`consent_grant`)."""
        if environ is not None:
            environ.pop(RESOLVED_KEY, None)
        plain = "request" not in params and "request_uri" not in params
        try:
            # A plain request has nothing to resolve: Authlib's RFC 9101 step would only look
            # the client up and check that it may send one (below), on a request built for it.
            data = dict(params) if plain else dict(self.resolve_request(params).payload.data)
        except OAuth2Error:
            return None
        client = self.clients.get(data.get("client_id"))
        if client is None or (plain and self.request_objects.requires_signed(client)):
            return None
        if environ is not None and data != params:
            environ[RESOLVED_KEY] = (dict(params), dict(data))
        defaults = client.client_metadata
        acr_values = defaults.get("default_acr_values")
        if not data.get("acr_values") and not _asks_acr(data.get("claims")) and acr_values:
            data["acr_values"] = " ".join(str(v) for v in acr_values)
        max_age = defaults.get("default_max_age")
        if data.get("max_age") in (None, "") and isinstance(max_age, (int, float)):
            data["max_age"] = int(max_age)
        return as_strings(data)

    def consent_grant(self, end_user: Any, environ: Mapping[str, Any]) -> Any:
        """Authlib's ``get_consent_grant`` for this /authorize request (validated, prompt and
        all), reusing what the middleware's guard resolved in the same request: a pushed
        request is not loaded, a request object not verified a second time. Only for exactly
        the parameters the guard saw (the first value of each, nothing blank, as the view sees
        them): anything else is resolved here as without the middleware."""
        kept = environ.get(RESOLVED_KEY)
        if kept is None:
            return self.get_consent_grant(None, end_user)
        request = self.create_oauth2_request(None)
        if kept[0] != request.payload.data:  # the request's values as a dict (_FlaskPayload)
            return self.get_consent_grant(None, end_user)
        request.payload = BasicOAuth2Payload(dict(kept[1]))
        request.user = end_user
        try:
            grant = self._resolved_grant(request)
            if grant is None:  # no grant for its response_type: Authlib's refusal, as without
                return self.get_consent_grant(None, end_user)
            grant.validate_no_multiple_request_parameter(request)
            grant.validate_consent_request()
        except OAuth2Error as error:
            error.state = request.payload.state
            raise
        return grant

    def _resolved_grant(self, request: OAuth2Request) -> Any:
        """Authlib's ``get_authorization_grant`` for a request resolved already: without its
        RFC 9101 hook (done by the guard), the grant made with its extensions."""
        for grant_cls, extensions in self._authorization_grants:
            if grant_cls.check_authorization_endpoint(request):
                grant = grant_cls(request, self)
                for extension in extensions:
                    extension(grant)
                return grant
        return None

    def authorization_response(self, grant: Any, end_user: Any) -> Any:
        """The code for ``end_user`` on a grant that :meth:`consent_grant` validated: Authlib's
        ``create_authorization_response`` without validating the same request a second time."""
        try:
            args = grant.create_authorization_response(grant.redirect_uri, end_user)
            response = self.handle_response(*args)
        except OAuth2Error as error:
            error.state = grant.request.payload.state
            response = self.handle_error_response(grant.request, error)
        grant.execute_hook("after_authorization_response", response)
        return response

    def spend_pushed(self, params: Mapping[str, str]) -> None:
        """The request was answered: its pushed request_uri, if it has one, is used up."""
        request_uri = params.get("request_uri", "")
        if request_uri.startswith(REQUEST_URI_PREFIX):
            self.pushed.spend(request_uri)

    def push_request(self, ip: str) -> tuple[str, int]:
        """RFC 9126 2.1: authenticate the client as at the token endpoint, validate its request as
        /authorize would (a request object in it verified), keep it: (request_uri, expires_in).
        Counted first, on the client if it is a confidential one, else on the address (raises
        PushRefused over a limit: par_limits.py)."""
        http = self.create_oauth2_request(None)
        limits = self.pushed.limits
        try:
            client = self.authenticate_client(http, AUTH_METHODS, endpoint="token")
        except OAuth2Error:
            limits.count_address(ip)  # PushRefused (429) once the address is over its rate
            raise
        if client.is_public:  # anyone can push as a public client: its share is per address
            limits.count_address(ip)
            quota_key = f"{client.client_id}|{ip}"
        else:
            limits.count_client(client.client_id)
            quota_key = client.client_id
        form = flask_request.form
        duplicated = [name for name in form if len(form.getlist(name)) > 1]
        if duplicated:
            raise InvalidRequestError(f"Parameters sent more than once: {duplicated}.")
        params = {k: v for k, v in form.items() if k not in CLIENT_AUTH}
        if "request_uri" in params:
            raise InvalidRequestError("A pushed request cannot hold a 'request_uri'.")
        if params.get("client_id") != client.client_id:
            raise InvalidRequestError("'client_id' must be the authenticated client.")
        request = OAuth2Request("POST", f"{self.issuer}/par")
        request.payload = BasicOAuth2Payload(params)
        grant = self.get_authorization_grant(request)  # a request object: verified, resolved
        redirect_uri = grant.validate_authorization_request()
        check_response_mode(grant.request.payload.data, redirect_uri)
        request_uri = self.pushed.push(
            client.client_id, grant.request.payload.data, quota_key=quota_key
        )
        return request_uri, PUSH_LIFETIME

    def register_logout(
        self, end_session: Callable[[], None], registration: RegistrationLimits
    ) -> None:
        self.register_endpoint(LogoutEndpoint(end_session))
        self.register_endpoint(RegistrationEndpoint(registration))


class LogoutEndpoint(EndSessionEndpoint):  # type: ignore[misc]
    """RP-initiated logout. ``end_session`` is the host's own logout (middleware, Flask-Login)."""

    server: IdpAuthorizationServer

    def __init__(self, end_session: Callable[[], None]) -> None:
        super().__init__()
        self._end_session = end_session

    def get_server_jwks(self) -> KeySet:
        return self.server.signing_key.public_key_set

    def get_algorithms(self) -> list[str]:
        return [SigningKey.ALG]

    def resolve_client_from_id_token_claims(self, id_token_claims: dict[str, Any]) -> Any:
        # Authlib resolves only a string `aud`; its own ID tokens carry a list.
        if id_token_claims.get("iss") != self.server.issuer:
            return None
        aud = id_token_claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        client_id = id_token_claims.get("azp") or (audiences[0] if len(audiences) == 1 else None)
        client: Client | None = self.server.clients.get(client_id)
        return client if client is not None and client_id in audiences else None

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        self._end_session()

"""The Authlib authorization server, its endpoints (registration, end session) and the metadata."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.integrations.flask_oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError  # type: ignore[import-untyped]
from authlib.oauth2.rfc7591 import ClientMetadataClaims as OAuthClientMetadata  # type: ignore[import-untyped]
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError  # type: ignore[import-untyped]
from authlib.oidc.registration import ClientMetadataClaims as OidcClientMetadata  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import ClientMetadataClaims as LogoutClientMetadata  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from flask import Flask
from joserfc.jwk import KeySet

from oidc_combinedreg.clock import Clock

from .clients import SUPPORTED_SCOPES, Client, ClientStore
from .directory import TomlDirectory
from .grants import CodeGrant, CodeStore, IdToken, S256Only, TokenStore
from .keys import SigningKey

__all__ = ["IdpAuthorizationServer", "provider_metadata"]

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


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
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SigningKey.ALG],
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
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    if acr_values:
        metadata["acr_values_supported"] = list(acr_values)
    return metadata


class IdpAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # Authlib is untyped
    """Authlib's Flask server, holding what the grants and endpoints need."""

    def __init__(
        self, app: Flask, *, issuer: str, clients: ClientStore, codes: CodeStore,
        tokens: TokenStore, directory: TomlDirectory, signing_key: SigningKey, clock: Clock,
        id_token_lifetime: int, metadata: Mapping[str, Any],
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
        self.init_app(app, query_client=clients.get, save_token=lambda token, request: None)
        self.register_grant(CodeGrant, [S256Only(required=True), IdToken(self)])

    def register_logout(self, end_session: Callable[[], None], open_registration: bool) -> None:
        self.register_endpoint(LogoutEndpoint(end_session))
        self.register_endpoint(RegistrationEndpoint(open_registration))


def _check_redirect_uris(metadata: Mapping[str, Any]) -> None:
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectURIError("'redirect_uris' must be a non-empty list.")
    for uri in uris:
        parts = urlsplit(uri) if isinstance(uri, str) else None
        if parts is None or not parts.scheme or parts.fragment:
            raise InvalidRedirectURIError(f"Not an absolute URI without fragment: {uri!r}")
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise InvalidRedirectURIError(f"No host in {uri!r}")
        web = metadata.get("application_type", "web") == "web"
        if web and parts.scheme not in ("http", "https"):
            raise InvalidRedirectURIError(f"Web clients need http(s) redirect URIs: {uri!r}")


class RegistrationEndpoint(ClientRegistrationEndpoint):  # type: ignore[misc]
    """OpenID Connect Dynamic Client Registration (open, as the Basic OP profile expects)."""

    server: IdpAuthorizationServer

    def __init__(self, open_registration: bool) -> None:
        super().__init__(
            claims_classes=[OAuthClientMetadata, OidcClientMetadata, LogoutClientMetadata]
        )
        self._open = open_registration

    def authenticate_token(self, request: Any) -> Any:
        return "anonymous" if self._open else None

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.metadata

    def create_registration_response(self, request: Any) -> tuple[int, Any, list[Any]]:
        if not self.authenticate_token(request):
            raise AccessDeniedError()
        if not isinstance(request.payload.data, dict) or not request.payload.data:
            raise InvalidRequestError("Expected a JSON object.")
        # Checked before Authlib's claims, which would answer 'invalid_client_metadata' here.
        _check_redirect_uris(request.payload.data)
        try:
            metadata = self.extract_client_metadata(request)
        except ValueError as exc:  # Authlib's logout claims raise ValueError for some URIs
            raise InvalidClientMetadataError(str(exc)) from exc
        metadata.setdefault("grant_types", ["authorization_code"])
        metadata.setdefault("response_types", ["code"])
        if metadata["token_endpoint_auth_method"] not in AUTH_METHODS:
            raise InvalidClientMetadataError("Unsupported 'token_endpoint_auth_method'.")
        public = metadata["token_endpoint_auth_method"] == "none"
        secret = None if public else secrets.token_urlsafe(32)
        issued_at = int(self.server.clock.now())
        client = self.server.clients.add(
            client_id=generate_token(32), secret=secret, metadata=metadata, issued_at=issued_at
        )
        body = dict(metadata, client_id=client.client_id, client_id_issued_at=issued_at)
        if secret is not None:
            body.update(client_secret=secret, client_secret_expires_at=0)
        return 201, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


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

"""The Authlib authorization server, its endpoints (registration, end session) and the metadata."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest  # type: ignore[import-untyped]
from flask import Flask
from joserfc.jwk import KeySet

from oidc_combinedreg.clock import Clock

from .clients import SUPPORTED_SCOPES, Client, ClientStore
from .directory import TomlDirectory
from .grants import CodeGrant, CodeStore, IdToken, S256Only, TokenStore
from .keys import SigningKey
from .registration import AUTH_METHODS, RegistrationEndpoint

__all__ = ["REQUEST_OBJECT_ALGS", "IdpAuthorizationServer", "provider_metadata"]

#: what a request object (RFC 9101) may be signed with: asymmetric only, never "none"
REQUEST_OBJECT_ALGS = ["RS256", "PS256", "ES256"]


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

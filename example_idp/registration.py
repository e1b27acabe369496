"""Dynamic Client Registration (OpenID Connect Dynamic Client Registration 1.0, RFC 7591), with the
redirect URIs of native apps (RFC 8252).

What discovery advertises is supported; metadata the IdP would only echo and then ignore
(encryption, pairwise subjects, request_uris to fetch, a JWKS by reference) is refused with
``invalid_client_metadata`` (RFC 7591 3.2.2), so that no client believes it got what it did not.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError  # type: ignore[import-untyped]
from authlib.oauth2.rfc7591 import ClientMetadataClaims as OAuthClientMetadata  # type: ignore[import-untyped]
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError  # type: ignore[import-untyped]
from authlib.oauth2.rfc9101 import ClientMetadataClaims as JarClientMetadata  # type: ignore[import-untyped]
from authlib.oidc.registration import ClientMetadataClaims as OidcClientMetadata  # type: ignore[import-untyped]
from authlib.oidc.rpinitiated import ClientMetadataClaims as LogoutClientMetadata  # type: ignore[import-untyped]
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .client_address import client_address

if TYPE_CHECKING:
    from .oauth import IdpAuthorizationServer
    from .registration_limits import RegistrationLimits

__all__ = ["AUTH_METHODS", "RegistrationEndpoint", "is_loopback_ip_uri", "redirect_uri_problem"]

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

#: metadata asking for what the IdP does not do: refused rather than echoed and ignored
_UNSUPPORTED = {
    "id_token_encrypted_response_alg": "ID tokens are signed, never encrypted",
    "id_token_encrypted_response_enc": "ID tokens are signed, never encrypted",
    "userinfo_encrypted_response_alg": "userinfo responses are never encrypted",
    "userinfo_encrypted_response_enc": "userinfo responses are never encrypted",
    "request_object_encryption_alg": "request objects must be signed, not encrypted",
    "request_object_encryption_enc": "request objects must be signed, not encrypted",
    "request_uris": "request objects by reference are not fetched: push them (RFC 9126)",
    "jwks_uri": "the IdP fetches nothing from clients: register the keys by value ('jwks')",
    "sector_identifier_uri": "only public subject identifiers are issued",
}


def is_loopback_ip_uri(uri: str) -> bool:
    """An http URI on a loopback IP literal (RFC 8252 7.3: its port is the app's to choose)."""
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False  # a name, "localhost" included (RFC 8252 8.3: not recommended)


def redirect_uri_problem(uri: object, *, native: bool) -> str | None:
    """Why ``uri`` cannot be registered, or None.

    Web clients: absolute http(s) URIs. Native apps (RFC 8252): a private-use scheme named after
    a reverse domain (7.1, 8.4), a claimed https URI (7.2), or http on a loopback address (7.3)."""
    if not isinstance(uri, str):
        return f"Not a string: {uri!r}"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return f"Not a URI: {uri!r}"
    if not parts.scheme or parts.fragment or "#" in uri:
        return f"Not an absolute URI without fragment: {uri!r}"
    if parts.scheme in ("http", "https"):
        if not parts.hostname or "@" in parts.netloc:
            return f"No host (or user info before it) in {uri!r}"
        if native and parts.scheme == "http" and not is_loopback_ip_uri(uri):
            if parts.hostname != "localhost":
                return f"Native apps use http only on a loopback address (RFC 8252 7.3): {uri!r}"
        return None
    if not native:
        return f"Web clients need http(s) redirect URIs: {uri!r}"
    if "." not in parts.scheme:
        return (
            f"A private-use scheme is a reverse domain name such as com.example.app "
            f"(RFC 8252 7.1): {uri!r}"
        )
    return None


def _check_redirect_uris(metadata: Mapping[str, Any]) -> None:
    uris = metadata.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectURIError("'redirect_uris' must be a non-empty list.")
    native = metadata.get("application_type", "web") == "native"
    for uri in uris:
        problem = redirect_uri_problem(uri, native=native)
        if problem:
            raise InvalidRedirectURIError(problem)


def _check_supported(data: Mapping[str, Any], server_metadata: Mapping[str, Any]) -> None:
    for name, why in _UNSUPPORTED.items():
        if name in data:
            raise InvalidClientMetadataError(f"'{name}' is not supported: {why}.")
    if data.get("subject_type", "public") != "public":
        raise InvalidClientMetadataError("'subject_type': only 'public' is supported.")
    login_uri = data.get("initiate_login_uri")
    if login_uri is not None and (
        not isinstance(login_uri, str) or urlsplit(login_uri).scheme != "https"
    ):
        raise InvalidClientMetadataError("'initiate_login_uri' must be an https URI.")
    acr_values = data.get("default_acr_values")
    if acr_values is not None:
        offered = server_metadata.get("acr_values_supported", [])
        if not isinstance(acr_values, list) or not all(v in offered for v in acr_values):
            raise InvalidClientMetadataError(
                f"'default_acr_values' must be a list of acr_values_supported: {offered}."
            )
    if "jwks" in data:
        try:
            KeySet.import_key_set(data["jwks"])
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidClientMetadataError(f"'jwks' is not a JWK Set: {exc}") from None


class _RedirectUrisCheckedFirst(OAuthClientMetadata):  # type: ignore[misc]
    """Authlib's RFC 7591 claims, without its URI check: it refuses the private-use schemes of
    native apps (RFC 8252 7.1); ``redirect_uri_problem`` has checked every URI already."""

    def validate_redirect_uris(self) -> None:
        pass


class RegistrationEndpoint(ClientRegistrationEndpoint):  # type: ignore[misc]
    """OpenID Connect Dynamic Client Registration (open, as the Basic OP profile expects),
    limited per address and in total (registration_limits.py)."""

    server: IdpAuthorizationServer

    def __init__(self, limits: RegistrationLimits) -> None:
        super().__init__(
            claims_classes=[
                _RedirectUrisCheckedFirst,
                OidcClientMetadata,
                LogoutClientMetadata,
                JarClientMetadata,
            ]
        )
        self._limits = limits

    def authenticate_token(self, request: Any) -> Any:
        return "anonymous" if self._limits.settings.open else None

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.metadata

    def create_registration_response(self, request: Any) -> tuple[int, Any, list[Any]]:
        if not self.authenticate_token(request):
            raise AccessDeniedError()
        data = request.payload.data
        if not isinstance(data, dict) or not data:
            raise InvalidRequestError("Expected a JSON object.")
        # Checked before Authlib's claims, which would answer 'invalid_client_metadata' here.
        _check_redirect_uris(data)
        _check_supported(data, self.server.metadata)
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
        cap = self._limits.settings.max_clients
        full = AccessDeniedError(f"Registration is full: at most {cap} registered clients.")
        if self.server.clients.full(cap):
            raise full  # before counting: a refused registration is not counted
        self._limits.count_address(client_address())  # Refused: 429
        client = self.server.clients.add(
            client_id=generate_token(32),
            secret=secret,
            metadata=metadata,
            issued_at=issued_at,
            cap=cap,
        )
        if client is None:  # filled by a parallel registration
            raise full
        body = dict(metadata, client_id=client.client_id, client_id_issued_at=issued_at)
        if secret is not None:
            body.update(client_secret=secret, client_secret_expires_at=0)
        return 201, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]

"""Relying parties: those listed in idp.toml, and those registered dynamically (kept in sqlite)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list  # type: ignore[import-untyped]
from flask import has_request_context, request

from .db import Database
from .registration import is_loopback_ip_uri

__all__ = ["SUPPORTED_SCOPES", "Client", "ClientStore", "hash_secret", "request_clients"]

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone")
#: WSGI environ key: the clients read in this request (no HTTP header maps to it)
CLIENTS_KEY = "example_idp.clients"
#: the memo of the WSGI request being served outside Flask's request context (the guard)
_outside_flask: ContextVar[dict[str, Client] | None] = ContextVar("clients", default=None)


@contextmanager
def request_clients(environ: dict[str, Any]) -> Iterator[None]:
    """Client lookups inside share the memo of the WSGI request ``environ``: the middleware's
    guard runs before Flask's request context exists, and the view reads the same client."""
    token = _outside_flask.set(environ.setdefault(CLIENTS_KEY, {}))
    try:
        yield
    finally:
        _outside_flask.reset(token)


def _request_memo() -> dict[str, Client] | None:
    if has_request_context():
        memo: dict[str, Client] = request.environ.setdefault(CLIENTS_KEY, {})
        return memo
    return _outside_flask.get()


def hash_secret(secret: str) -> str:
    # Client secrets are long random strings: a plain SHA-256 is enough to keep them unusable
    # if the database leaks (a slow hash is for human-chosen passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Client(ClientMixin):  # type: ignore[misc]  # Authlib is untyped
    """One relying party, with its RFC 7591 metadata."""

    client_id: str
    secret_hash: str | None
    client_metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def token_endpoint_auth_method(self) -> str:
        return str(self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic"))

    @property
    def redirect_uris(self) -> list[str]:
        return list(self.client_metadata.get("redirect_uris", []))

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def id_token_signed_response_alg(self) -> str | None:
        return None  # RS256 only (advertised in discovery; registration refuses others)

    def get_client_id(self) -> str:
        return self.client_id

    @property
    def is_native(self) -> bool:
        return self.client_metadata.get("application_type") == "native"

    def get_default_redirect_uri(self) -> str | None:
        # None: OIDC Core 3.1.2.1 requires redirect_uri in every request, even with one registered
        # URI; Authlib then refuses the request on a page (no redirect to a URI nobody named).
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        registered = self.client_metadata.get("scope")
        allowed = set(scope_to_list(registered) if registered else SUPPORTED_SCOPES)
        return str(list_to_scope([s for s in scope_to_list(scope) if s in allowed]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True  # exact match, as OpenID Connect requires
        # RFC 8252 7.3: a native app's loopback IP redirect URI matches with any port (the app
        # opens one when it needs it); everything else of the URI must be identical.
        if not (self.is_native and is_loopback_ip_uri(redirect_uri)):
            return False
        asked = _without_port(redirect_uri)
        return asked is not None and any(
            _without_port(uri) == asked for uri in self.redirect_uris if is_loopback_ip_uri(uri)
        )

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.client_metadata.get("response_types", ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client_metadata.get("grant_types", ["authorization_code"])


def _without_port(uri: str) -> tuple[str, ...] | None:
    """A loopback URI's parts but its port; None with user info (nothing to hide a host)."""
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return None
    return (parts.scheme, str(parts.hostname), parts.path, parts.query)


class ClientStore:
    """Looks a client up in the config first, then in the database."""

    def __init__(self, db: Database, configured: Mapping[str, Client]) -> None:
        self._db = db
        self._configured = dict(configured)

    def get(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        if client_id in self._configured:
            return self._configured[client_id]
        # Authlib asks for the client several times per request (five times at /authorize, the
        # middleware's guard twice more): a registered client is read once per WSGI request
        # (never kept longer: nothing to invalidate).
        memo = _request_memo()
        if memo is not None and client_id in memo:
            return memo[client_id]
        row = self._db.fetch_one(
            "SELECT client_id, secret_hash, metadata FROM clients WHERE client_id = ?",
            (client_id,),
        )
        if row is None:
            return None
        client = Client(
            client_id=row["client_id"],
            secret_hash=row["secret_hash"],
            client_metadata=json.loads(row["metadata"]),
        )
        if memo is not None:
            memo[client_id] = client
        return client

    def full(self, cap: int) -> bool:
        """Whether ``cap`` clients are registered (a registration's check; not per request)."""
        row = self._db.fetch_one("SELECT count(*) FROM clients")
        return row is not None and row[0] >= cap

    def add(
        self, *, client_id: str, secret: str | None, metadata: Mapping[str, Any], issued_at: int,
        cap: int,
    ) -> Client | None:  # fmt: skip
        """The client stored; None (nothing stored) when ``cap`` clients are registered already,
        counted in the insert itself so parallel registrations cannot pass it."""
        secret_hash = hash_secret(secret) if secret else None
        stored = self._db.execute(
            "INSERT INTO clients (client_id, secret_hash, metadata, issued_at)"
            " SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM clients) < ?",
            (client_id, secret_hash, json.dumps(dict(metadata)), issued_at, cap),
        )
        if not stored:
            return None
        return Client(client_id=client_id, secret_hash=secret_hash, client_metadata=metadata)

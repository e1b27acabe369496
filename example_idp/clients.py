"""Relying parties: those listed in idp.toml, and those registered dynamically (kept in sqlite)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list  # type: ignore[import-untyped]

from .db import Database

__all__ = ["SUPPORTED_SCOPES", "Client", "ClientStore", "hash_secret"]

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone")


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

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: with several registered URIs the request must name one.
        uris = self.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        registered = self.client_metadata.get("scope")
        allowed = set(scope_to_list(registered) if registered else SUPPORTED_SCOPES)
        return str(list_to_scope([s for s in scope_to_list(scope) if s in allowed]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, as OpenID Connect requires

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
        row = self._db.fetch_one(
            "SELECT client_id, secret_hash, metadata FROM clients WHERE client_id = ?",
            (client_id,),
        )
        if row is None:
            return None
        return Client(
            client_id=row["client_id"],
            secret_hash=row["secret_hash"],
            client_metadata=json.loads(row["metadata"]),
        )

    def add(
        self, *, client_id: str, secret: str | None, metadata: Mapping[str, Any], issued_at: int
    ) -> Client:
        secret_hash = hash_secret(secret) if secret else None
        self._db.execute(
            "INSERT INTO clients (client_id, secret_hash, metadata, issued_at) VALUES (?, ?, ?, ?)",
            (client_id, secret_hash, json.dumps(dict(metadata)), issued_at),
        )
        return Client(client_id=client_id, secret_hash=secret_hash, client_metadata=metadata)

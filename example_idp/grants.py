"""The authorization code grant: codes and tokens in sqlite, PKCE (S256), and the ID token.

Codes are single use: the first token request that presents a code consumes it (atomically), and a
second one is refused and revokes every token issued for that code (RFC 6749 section 4.1.2).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidRequestError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import grants as oauth2_grants
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo  # type: ignore[import-untyped]
from authlib.oidc.core.grants import OpenIDCode  # type: ignore[import-untyped]

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.integrations.authlib import SignInClaimsMixin

from .db import Database

if TYPE_CHECKING:
    from .oauth import IdpAuthorizationServer

__all__ = [
    "CodeGrant",
    "CodeStore",
    "IdToken",
    "S256Only",
    "SignedIn",
    "StoredCode",
    "StoredToken",
    "TokenStore",
    "user_claims",
]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class SignedIn:
    """A user the IdP may issue a code for: who, how (RFC 8176 ``amr``) and when."""

    user: DirectoryUser
    amr: tuple[str, ...]
    acr: str | None
    auth_time: int


@dataclass(frozen=True, kw_only=True)
class StoredCode(SignInClaimsMixin, AuthorizationCodeMixin):  # type: ignore[misc]  # Authlib is untyped
    """A code with the sign-in's amr/acr/auth_time, which Authlib's ID token reads through
    SignInClaimsMixin's get_amr/get_acr/get_auth_time (oidc_combinedreg.integrations.authlib)."""

    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    amr: tuple[str, ...]
    acr: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce


#: used and expired codes are kept this long, so a late replay is still recognised
KEEP_USED = 86400
#: seconds between two purges of the codes past KEEP_USED, per process
PURGE_EVERY = 60


class CodeStore:
    def __init__(self, db: Database, clock: Clock, lifetime: int) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = lifetime
        self._next_purge = 0.0

    def save(
        self, code: str, *, client_id: str, redirect_uri: str, scope: str, data: dict[str, Any],
        signed_in: SignedIn,
    ) -> None:  # fmt: skip
        now = int(self._clock.now())
        if now >= self._next_purge:
            # Not at every code: even through the index it is a statement, and a day's codes
            # lose nothing by staying a minute longer (a replay is refused either way).
            self._next_purge = now + PURGE_EVERY
            self._db.execute("DELETE FROM codes WHERE expires_at < ?", (now - KEEP_USED,))
        # One statement, its own transaction (Database.execute): no BEGIN/COMMIT around it.
        self._db.execute(
            "INSERT INTO codes (code_hash, client_id, user_id, redirect_uri, scope, nonce,"
            " code_challenge, code_challenge_method, auth_time, amr, acr, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _digest(code), client_id, signed_in.user.id, redirect_uri, scope,
                data.get("nonce"), data.get("code_challenge"),
                data.get("code_challenge_method"), signed_in.auth_time,
                json.dumps(list(signed_in.amr)), signed_in.acr, now + self._lifetime,
            ),
        )  # fmt: skip

    def consume(self, code: str, client_id: str) -> StoredCode | None:
        """The code's record, marking it used; None if unknown, expired or used before.

        A code used before is a replay (or a stolen code): the tokens issued for it are revoked.
        """
        code_hash = _digest(code)
        now = int(self._clock.now())
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM codes WHERE code_hash = ? AND client_id = ?", (code_hash, client_id)
            ).fetchone()
            if row is None:
                return None
            if row["used"]:
                conn.execute("UPDATE tokens SET revoked = 1 WHERE code_hash = ?", (code_hash,))
                return None
            conn.execute("UPDATE codes SET used = 1 WHERE code_hash = ?", (code_hash,))
        if row["expires_at"] <= now:
            return None
        return StoredCode(
            code_hash=code_hash,
            client_id=row["client_id"],
            user_id=row["user_id"],
            redirect_uri=row["redirect_uri"],
            scope=row["scope"],
            nonce=row["nonce"],
            code_challenge=row["code_challenge"],
            code_challenge_method=row["code_challenge_method"],
            auth_time=row["auth_time"],
            amr=tuple(json.loads(row["amr"])),
            acr=row["acr"],
        )

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        row = self._db.fetch_one(
            "SELECT 1 FROM codes WHERE client_id = ? AND nonce = ?", (client_id, nonce)
        )
        return row is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredToken:
    client_id: str
    user_id: str
    scope: str


class TokenStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._next_purge = 0.0

    def save(self, token: dict[str, Any], *, client_id: str, user_id: str, code_hash: str) -> None:
        now = int(self._clock.now())
        if now >= self._next_purge:
            # As the codes' purge: at most once a minute per process, through tokens_expiry. An
            # expired token is refused already (find); revoking one on a code replay changes
            # nothing, so none is kept past its expiry (decision 192).
            self._next_purge = now + PURGE_EVERY
            self._db.execute("DELETE FROM tokens WHERE issued_at + expires_in < ?", (now,))
        self._db.execute(
            "INSERT INTO tokens (token_hash, client_id, user_id, scope, issued_at, expires_in,"
            " code_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                _digest(token["access_token"]), client_id, user_id, token.get("scope", ""),
                now, int(token["expires_in"]), code_hash,
            ),
        )  # fmt: skip

    def find(self, access_token: str) -> StoredToken | None:
        """The token if it exists, is not revoked and has not expired."""
        row = self._db.fetch_one(
            "SELECT * FROM tokens WHERE token_hash = ? AND revoked = 0", (_digest(access_token),)
        )
        if row is None or row["issued_at"] + row["expires_in"] <= self._clock.now():
            return None
        return StoredToken(client_id=row["client_id"], user_id=row["user_id"], scope=row["scope"])


def user_claims(user: DirectoryUser, scope: str) -> UserInfo:
    """The claims about a user that a scope releases (ID token and userinfo alike)."""
    claims = {
        "sub": user.id,
        "name": user.display_name or user.id,
        "preferred_username": user.id,
        "email": user.email,
        # Demo directory: addresses are set by the administrator, so they count as verified.
        "email_verified": user.email is not None,
        "phone_number": user.office_phone,
    }
    if user.email is None:
        del claims["email_verified"]  # nothing to be verified
    # OIDC Core 5.3.2: a claim without a value is omitted, not returned as null.
    info = UserInfo({k: v for k, v in claims.items() if v is not None})
    return info.filter(scope)


class CodeGrant(oauth2_grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: IdpAuthorizationServer

    def generate_authorization_code(self) -> str:
        # 256 bits from the OS (RFC 6749 10.10 asks at least 128), in one call: Authlib's
        # default draws 48 characters one by one, a tenth of a code issuance's CPU.
        return secrets.token_urlsafe(32)

    def save_authorization_code(self, code: str, request: Any) -> None:
        self.server.codes.save(
            code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope,
            data=request.payload.data,
            signed_in=request.user,
        )

    def query_authorization_code(self, code: str, client: Any) -> StoredCode | None:
        return self.server.codes.consume(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        pass  # consumed (marked used) already when it was looked up

    def authenticate_user(self, authorization_code: StoredCode) -> DirectoryUser | None:
        user = self.server.directory.get_user(authorization_code.user_id)
        return user if user is not None and user.enabled else None

    def save_token(self, token: dict[str, Any]) -> None:
        self.server.tokens.save(
            token,
            client_id=self.request.client.get_client_id(),
            user_id=self.request.user.id,
            code_hash=self.request.authorization_code.code_hash,
        )


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only; required for public clients, optional for confidential ones."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("Public clients must send a PKCE 'code_challenge'.")


class IdToken(OpenIDCode):  # type: ignore[misc]
    """Signs the ID token with the IdP's key (with a ``kid``) and puts amr/acr/auth_time in it."""

    def __init__(self, server: IdpAuthorizationServer) -> None:
        super().__init__(require_nonce=False)
        self._server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return self._server.codes.nonce_used(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: Any) -> Any:
        return self._server.signing_key.private

    def get_client_algorithm(self, client: Any) -> str:
        return self._server.signing_key.ALG

    def get_encode_header(self, client: Any) -> dict[str, str]:
        # Without a kid, clients that re-fetch the JWKS cannot pick the key and fail the check.
        return {"alg": self._server.signing_key.ALG, "kid": self._server.signing_key.kid}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(self._server.clock.now())
        return {
            "iss": self._server.issuer,
            "aud": [client.get_client_id()],
            "azp": client.get_client_id(),
            "iat": now,
            "exp": now + self._server.id_token_lifetime,
        }

    def generate_user_info(self, user: DirectoryUser, scope: str) -> UserInfo:
        return user_claims(user, scope)

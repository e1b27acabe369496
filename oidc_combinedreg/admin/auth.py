"""Bearer-token authentication of the admin API, and the optional admin group.

Tokens are 256-bit random values (``secrets.token_urlsafe(32)``), so they are stored as plain
SHA-256 digests, not Argon2: a slow hash protects guessable secrets (passwords) from an offline
search, and nothing is guessable in 2**256. A fast hash keeps every API call cheap and gives an
unauthenticated caller no way to make the server burn CPU. The comparison runs over every
configured digest with :func:`hmac.compare_digest`, so timing does not tell which one matched.

When ``[admin].group`` is set, a token acts for its ``user``, who must still be an enabled member
of that group in the Directory at the time of the call: removing someone from the group revokes
their tokens without a config change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..directory import Directory, DirectoryUser
from ..exceptions import AccessDenied
from .config import AdminConfig, AdminToken

__all__ = ["AdminPrincipal", "authenticate", "hash_token", "is_admin", "new_token"]

#: a recognisable prefix (secret scanners can match it); not part of the entropy
TOKEN_PREFIX = "crg_admin_"


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminPrincipal:
    """Who is calling: the token's name and, when configured, the admin user it acts for."""

    token_name: str
    user_id: str | None = None

    @property
    def actor(self) -> str:
        """What the audit log records as the actor."""
        return f"{self.token_name}:{self.user_id}" if self.user_id else self.token_name


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _match(config: AdminConfig, token: str) -> AdminToken | None:
    digest = hash_token(token).encode()
    found: AdminToken | None = None
    for candidate in config.tokens:
        # Compare against every entry (no early exit): the time taken does not depend on which.
        if hmac.compare_digest(candidate.hash.encode(), digest):
            found = candidate
    return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 200:
        return None
    return value


def is_admin(config: AdminConfig, user: DirectoryUser | None) -> bool:
    """Is this Directory user an admin (an enabled member of ``[admin].group``)?"""
    return (
        config.group is not None
        and user is not None
        and user.enabled
        and config.group in user.groups
    )


def authenticate(
    config: AdminConfig, directory: Directory, authorization: str | None
) -> AdminPrincipal:
    """The caller of the admin API, or :class:`AccessDenied` (no token, wrong token, not admin)."""
    if not config.api_enabled:
        raise AccessDenied("admin: api disabled (no token configured)")
    token = bearer_token(authorization)
    if token is None:
        raise AccessDenied("admin: no bearer token")
    match = _match(config, token)
    if match is None:
        raise AccessDenied("admin: wrong token")
    if config.group is not None:
        user = directory.get_user(match.user) if match.user else None
        if not is_admin(config, user):
            raise AccessDenied("admin: token user is not in the admin group")
    return AdminPrincipal(token_name=match.name, user_id=match.user)

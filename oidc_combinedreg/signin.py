"""What the middleware tells the host about a completed sign-in (for the ID token)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SignInResult"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SignInResult:
    """A sign-in with nothing pending: the host may issue an authorization code for it.

    The host copies these into the authorization code it issues and from there into the ID token:
    ``amr`` (RFC 8176 values, e.g. ``("pwd",)`` or ``("pwd", "otp", "mfa")``), ``acr``, and
    ``auth_time`` (when the user last actively authenticated: the later of the password and the
    last MFA of this sign-in; ``max_age`` counts from it, docs/oidc.md).
    """

    user_id: str
    amr: tuple[str, ...]
    acr: str
    #: POSIX time the last factor completed (the ID token's ``auth_time``)
    auth_time: int
    #: POSIX time of the password check of this sign-in (for a TAP sign-in: the pass's)
    password_time: int | None = None
    #: POSIX time of the last MFA in this sign-in, or None
    mfa_time: int | None = None

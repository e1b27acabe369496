"""What the middleware tells the host about a completed sign-in (for the ID token)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SignInResult", "SignInState"]


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


@dataclass(frozen=True, kw_only=True, slots=True)
class SignInState:
    """Who is signed in to the middleware in this browser, how and when: for the host's own
    pages (``CombinedRegistration.current_sign_in``), e.g. to ask for a recent MFA before an
    admin page. Read-only: it never moves a sign-in on and never reads another browser's session.

    A sign-in still at its MFA step shows what it has so far (``amr == ("pwd",)``,
    ``mfa_time`` None): check ``"mfa" in amr`` and ``mfa_time`` yourself.
    """

    user_id: str
    #: RFC 8176 values so far, e.g. ``("pwd",)`` or ``("pwd", "otp", "mfa")``
    amr: tuple[str, ...]
    #: the strongest ``[acr]`` class this sign-in reached
    acr: str
    #: POSIX time the last factor completed
    auth_time: int
    #: POSIX time of the password check (for a Temporary Access Pass sign-in: the pass's)
    password_time: int | None = None
    #: POSIX time of the last MFA of this sign-in, or None
    mfa_time: int | None = None

    def mfa_within(self, seconds: float, now: float) -> bool:
        """An MFA in this sign-in no longer than ``seconds`` before ``now``."""
        return self.mfa_time is not None and now - self.mfa_time <= seconds

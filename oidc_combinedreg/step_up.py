"""The resource server's side of step-up authentication (RFC 9470): pure, no I/O, no web imports.

An API protected by access tokens checks how the user authenticated (the token's ``acr`` and
``auth_time`` claims: a JWT access token's, RFC 9068, or token introspection's, RFC 7662) against
what the operation needs. When that falls short it answers 401 with a challenge that tells the
client what to ask the authorization server for, and the client sends the user back through
``/authorize`` with those ``acr_values``/``max_age``; with a live session the middleware asks only
for the missing step (docs/oidc.md, "Step-up").

::

    from oidc_combinedreg.step_up import Requirement, check

    NEEDS_MFA = Requirement(acr_values=("urn:combinedreg:acr:mfa", "urn:combinedreg:acr:phr"),
                            max_age=900)

    shortfall = check(token_claims, NEEDS_MFA, now=time.time())
    if shortfall is not None:
        return 401, {"WWW-Authenticate": shortfall.challenge()}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["INSUFFICIENT_USER_AUTHENTICATION", "Requirement", "Shortfall", "challenge", "check"]

#: RFC 9470 3: the error code of the challenge
INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"

# RFC 6750 3: error_description and the other quoted values allow %x20-21 / %x23-5B / %x5D-7E
# (printable ASCII without '"' and '\'), so they never need escaping inside the quotes.
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# RFC 6749 A.1 / OIDC Core 3.1.2.1: an acr value is a string without spaces (space separates them)
_ACR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class Requirement:
    """What an operation needs of the user's authentication.

    ``acr_values``: the acceptable classes, any one of them, in the order the client should ask
    for them (list the stronger classes that also satisfy it, e.g. MFA and phishing-resistant
    MFA). Empty: any. ``max_age``: at most this many seconds since the user last actively
    authenticated (``auth_time``). None: any age.
    """

    acr_values: tuple[str, ...] = ()
    max_age: int | None = None

    def __post_init__(self) -> None:
        for value in self.acr_values:
            if not isinstance(value, str) or not _ACR.fullmatch(value):
                raise ValueError(
                    f"Requirement.acr_values: {value!r} is not an acr value (printable ASCII, "
                    "no space, no '\"' or '\\\\')"
                )
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not isinstance(self.max_age, int) or self.max_age < 0
        ):
            raise ValueError(
                f"Requirement.max_age: expected whole seconds >= 0, got {self.max_age!r}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Shortfall:
    """Why a token's authentication falls short of a :class:`Requirement`."""

    requirement: Requirement
    #: a human-readable reason (the challenge's ``error_description``)
    description: str

    def challenge(self, *, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` header value for this shortfall (RFC 9470 3)."""
        return challenge(self.requirement, self.description, realm=realm)


def check(claims: Mapping[str, Any], requirement: Requirement, *, now: float) -> Shortfall | None:
    """None if ``claims`` (an access token's or its introspection's) meet ``requirement``.

    ``now``: the current POSIX time. A missing, malformed or future ``auth_time`` does not meet
    a ``max_age``; a missing ``acr`` does not meet ``acr_values``: fail closed."""
    if requirement.acr_values:
        acr = claims.get("acr")
        if not isinstance(acr, str) or acr not in requirement.acr_values:
            return Shortfall(
                requirement=requirement,
                description="A different authentication level is required",
            )
    if requirement.max_age is not None:
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
            return Shortfall(
                requirement=requirement, description="The time of authentication is unknown"
            )
        age = now - auth_time
        if age > requirement.max_age or age < -60:  # a minute of clock skew; beyond: malformed
            return Shortfall(
                requirement=requirement, description="More recent authentication is required"
            )
    return None


def challenge(requirement: Requirement, description: str, *, realm: str | None = None) -> str:
    """``Bearer error="insufficient_user_authentication", error_description="...",
    acr_values="...", max_age="..."`` (RFC 9470 3; RFC 6750 3 for the syntax).

    Raises ``ValueError`` for a description or realm that a quoted string may not hold."""
    for name, text in (("description", description), ("realm", realm or "")):
        if not _QUOTABLE.fullmatch(text):
            raise ValueError(
                f"challenge {name}: {text!r} may hold only printable ASCII without '\"' and '\\\\'"
                " (RFC 6750 3)"
            )
    params = []
    if realm:
        params.append(f'realm="{realm}"')
    params.append(f'error="{INSUFFICIENT_USER_AUTHENTICATION}"')
    params.append(f'error_description="{description}"')
    if requirement.acr_values:
        params.append(f'acr_values="{" ".join(requirement.acr_values)}"')
    if requirement.max_age is not None:
        params.append(f'max_age="{requirement.max_age}"')
    return "Bearer " + ", ".join(params)

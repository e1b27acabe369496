"""What a relying party's ``acr`` request demands of one sign-in: pure decisions, no I/O.

OpenID Connect Core 1.0 gives an RP two ways to ask for an Authentication Context Class:

* ``acr_values`` (3.1.2.1): *voluntary*, "in order of preference". The first value this user can
  satisfy wins; a value the user cannot reach (no MFA method) is passed over, and when none can be
  reached the sign-in goes on and the ID token's ``acr`` says what was done (the RP decides).
* ``claims`` with ``id_token.acr`` (5.5.1.1) ``essential: true`` and ``values``: the ``acr``
  returned MUST be one of them, else the sign-in is a failed authentication attempt
  (the RP gets ``access_denied``). A user with no MFA method who is inside the MFA
  registration policy's audience registers one in the wizard first; a user the config keeps out
  of it (``exclude_groups``, e.g. a break-glass account) is never pushed there by an RP.

A client's registered ``default_acr_values`` (OIDC Registration 2) arrive as ``acr_values``: the
host's ``effective_params`` fills them in when the request has none. The decision table is in
docs/oidc.md and tested row by row (tests/core/test_acr_request.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["AcrDemand", "AcrLevel", "AcrRequest", "acr_demand", "parse_acr_request"]


class AcrLevel(IntEnum):
    """The classes this deployment knows, weakest first; a stronger one satisfies a weaker one."""

    PASSWORD = 0
    MFA = 1
    PHISHING_RESISTANT = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class AcrRequest:
    """The RP's request: ``acr`` values in preference order, and whether they are essential."""

    values: tuple[str, ...] = ()
    essential: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class AcrDemand:
    """What the RP's request adds to this sign-in."""

    #: the level the sign-in must reach (PASSWORD: nothing beyond the password)
    level: AcrLevel = AcrLevel.PASSWORD
    #: an essential request none of whose values this user can reach: a failed authentication
    unmet: bool = False
    #: an essential MFA request for a user without a method inside the registration policy:
    #: the wizard registers one (which counts as MFA), then the sign-in goes on
    register: bool = False


def parse_acr_request(params: Mapping[str, str]) -> AcrRequest:
    """The ``acr`` request of an authorization request's (effective) parameters.

    ``claims`` asking for ``id_token.acr`` with ``values`` (or ``value``) takes precedence over
    ``acr_values``; a ``claims`` that is not JSON, or an ``acr`` member without values, adds
    nothing (the host refuses a malformed ``claims`` with ``invalid_request`` itself)."""
    claims = params.get("claims")
    if claims:
        wanted = _claims_acr(claims)
        if wanted is not None:
            return wanted
    return AcrRequest(values=tuple(params.get("acr_values", "").split()))


def _claims_acr(claims: str) -> AcrRequest | None:
    try:
        parsed = json.loads(claims)
    except ValueError:
        return None
    id_token = parsed.get("id_token") if isinstance(parsed, dict) else None
    acr = id_token.get("acr") if isinstance(id_token, dict) else None
    if not isinstance(acr, dict):
        return None
    raw = acr.get("values")
    if raw is None and "value" in acr:
        raw = [acr["value"]]
    if not isinstance(raw, list):
        return None
    values = tuple(v for v in raw if isinstance(v, str) and v)
    if not values:
        return None
    return AcrRequest(values=values, essential=acr.get("essential") is True)


def acr_demand(
    request: AcrRequest,
    levels: Mapping[str, AcrLevel],
    *,
    reachable: AcrLevel,
    may_register: bool,
) -> AcrDemand:
    """The first value of ``request`` this user can reach decides.

    ``levels``: the deployment's ``acr`` values and their level (unknown values are passed over).
    ``reachable``: the highest level this user can reach now (the session's, or a method's).
    ``may_register``: the user is inside the MFA registration policy's audience (not excluded).
    """
    known = [levels[v] for v in request.values if v in levels]
    for level in known:
        if level <= reachable:
            return AcrDemand(level=level)
    if not request.essential or not request.values:
        return AcrDemand()  # voluntary: the ID token's acr tells the RP what was done
    # Essential and out of reach. Registering an MFA method in the wizard reaches MFA (never
    # phishing resistance: the wizard's choice of kind is the user's).
    if may_register and reachable is AcrLevel.PASSWORD and AcrLevel.MFA in known:
        return AcrDemand(level=AcrLevel.MFA, register=True)
    return AcrDemand(unmet=True)

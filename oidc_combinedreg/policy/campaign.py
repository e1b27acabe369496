"""The registration campaign ("nudge"), as Entra runs one: pure decisions, no I/O.

Users who still sign in with only a text or a call are asked, after sign-in, to add the
authenticator app. They may snooze the ask ``snoozes_allowed`` times, each for ``snooze_days``;
after that the ask is required (no "Not now"). Targeted by an audience (include/exclude groups and
users, exclusion wins: break-glass accounts sit in an exclusion group).

"Only a text or a call" (decision 160): the user has at least one MFA-capable method and every
one of them is a phone (mobile, alternate, or the directory's office phone). Email is not an MFA
method and changes nothing; any stronger MFA method (app, security key, hardware token, push)
takes the user out of the campaign, whether added through it or not.

The campaign's state lives in the user's stored state, ``UserState.extra["campaign"]``:
``asked`` (times shown), ``first_asked`` / ``last_asked`` (timestamps), ``snoozes`` (used),
``until`` (snoozed until), ``added`` (when the app was added through it). JSON-safe values only,
so every store backend keeps it as it keeps the rest of ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..config.reader import Reader
from ..methods.kinds import METHOD_RULES, MethodKind
from ..store.base import MethodRecord
from .audience import Audience, read_audience

__all__ = [
    "CAMPAIGN_KEY",
    "PHONE_KINDS",
    "CampaignAsk",
    "CampaignMethod",
    "CampaignPolicy",
    "CampaignState",
    "campaign_ask",
    "campaign_kind",
    "campaign_state",
    "phone_only",
    "read_campaign",
]

#: the key of the campaign's state in ``UserState.extra``
CAMPAIGN_KEY = "campaign"

#: the methods that are "a text or a call"
PHONE_KINDS = frozenset(
    {MethodKind.MOBILE_PHONE, MethodKind.ALTERNATE_PHONE, MethodKind.OFFICE_PHONE}
)


class CampaignMethod(StrEnum):
    PUSH = "push"
    TOTP = "totp"


@dataclass(frozen=True, kw_only=True, slots=True)
class CampaignPolicy:
    enabled: bool = False
    #: the app the campaign asks for; push falls back to TOTP where push is not offered
    method: CampaignMethod = CampaignMethod.PUSH
    audience: Audience = field(default_factory=Audience)
    #: how many times a user may answer "Not now" (0: required at once)
    snoozes_allowed: int = 3
    #: how long one "Not now" lasts (0: until the next sign-in)
    snooze_days: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class CampaignState:
    asked: int = 0
    first_asked: float | None = None
    last_asked: float | None = None
    snoozes: int = 0
    until: float | None = None
    added: float | None = None

    def to_extra(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "first_asked": self.first_asked,
            "last_asked": self.last_asked,
            "snoozes": self.snoozes,
            "until": self.until,
            "added": self.added,
        }


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def campaign_state(extra: Mapping[str, Any]) -> CampaignState:
    """The campaign's state in ``UserState.extra`` (anything malformed reads as not set)."""
    raw = extra.get(CAMPAIGN_KEY)
    if not isinstance(raw, Mapping):
        return CampaignState()
    asked, snoozes = _num(raw.get("asked")), _num(raw.get("snoozes"))
    return CampaignState(
        asked=max(0, int(asked or 0)),
        first_asked=_num(raw.get("first_asked")),
        last_asked=_num(raw.get("last_asked")),
        snoozes=max(0, int(snoozes or 0)),
        until=_num(raw.get("until")),
        added=_num(raw.get("added")),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class CampaignAsk:
    """The campaign asks this user now for ``kind``."""

    kind: MethodKind
    snoozes_left: int
    #: no "Not now" any more
    required: bool


def phone_only(methods: Sequence[MethodRecord]) -> bool:
    """The user's strongest MFA method is a text or a call (decision 160)."""
    mfa = [m.kind for m in methods if METHOD_RULES[m.kind].mfa]
    return bool(mfa) and all(k in PHONE_KINDS for k in mfa)


def campaign_kind(policy: CampaignPolicy, offered: Set[MethodKind]) -> MethodKind | None:
    """The kind the campaign asks for, among the kinds ``offered`` to this user (registrable in
    this deployment and allowed by the methods policy): push only where push is offered (an app
    to install, ``[methods.push]``), TOTP otherwise; None: nothing to ask for."""
    if policy.method is CampaignMethod.PUSH and MethodKind.PUSH in offered:
        return MethodKind.PUSH
    return MethodKind.TOTP if MethodKind.TOTP in offered else None


def campaign_ask(
    policy: CampaignPolicy,
    *,
    user_id: str,
    groups: Set[str],
    methods: Sequence[MethodRecord],
    extra: Mapping[str, Any],
    kind: MethodKind | None,
    now: float,
) -> CampaignAsk | None:
    """Does the campaign ask this user now (None: no)?"""
    if not policy.enabled or kind is None:
        return None
    if not policy.audience.contains(user_id, groups) or not phone_only(methods):
        return None
    state = campaign_state(extra)
    if state.until is not None and state.until > now:
        return None  # snoozed
    left = max(0, policy.snoozes_allowed - state.snoozes)
    return CampaignAsk(kind=kind, snoozes_left=left, required=left == 0)


def read_campaign(r: Reader) -> CampaignPolicy:
    """Read ``[policies.campaign]``."""
    policy = CampaignPolicy(
        enabled=r.boolean("enabled", False),
        method=r.choice("method", CampaignMethod, CampaignMethod.PUSH),
        audience=read_audience(r),
        snoozes_allowed=r.integer("snoozes_allowed", 3, min=0, max=100),
        snooze_days=r.integer("snooze_days", 1, min=0, max=14),
    )
    r.done()
    return policy

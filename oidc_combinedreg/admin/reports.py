"""Report builders over store data: pure functions, no I/O (the admin service gathers the inputs).

Three reports, each a list of flat rows that render as a table, CSV or JSON:

* **registration details**, one row per user: MFA capable, SSPR registered, SSPR capable, default
  method, methods registered (definitions in :func:`registration_row`);
* **usage summary** over a period: methods registered by kind, and activity from the audit log
  (registration, password reset, MFA, TAP) started / succeeded / failed by reason;
* **audit log** rows: who, what, when, from which IP, outcome, correlation id;
* **registration campaign**, one row per user it concerns: asked, snoozed, required, added
  (:func:`campaign_row`).

Which audit events count for which activity is data (:data:`ACTIVITY_EVENTS`), so a feature that
adds events adds a line there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..directory import DirectoryUser
from ..methods.kinds import METHOD_RULES, MethodKind
from ..policy.campaign import campaign_state, phone_only
from ..policy.config import PolicyConfig
from ..store.base import AuditEvent, MethodRecord, UserState

__all__ = [
    "ACTIVITY_EVENTS",
    "AUDIT_COLUMNS",
    "CAMPAIGN_COLUMNS",
    "REGISTRATION_COLUMNS",
    "Activity",
    "CampaignRow",
    "Phase",
    "RegistrationRow",
    "UsageSummary",
    "audit_row",
    "campaign_row",
    "iso",
    "parse_iso",
    "registration_row",
    "render",
    "usage_summary",
]


class Phase(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: activity -> phase -> the audit event types that count for it. Failures are grouped by the
#: event's ``detail["reason"]``. The password reset's events are the contract for its author.
ACTIVITY_EVENTS: dict[str, dict[Phase, frozenset[str]]] = {
    "registration": {
        Phase.STARTED: frozenset({"registration.started"}),
        Phase.SUCCEEDED: frozenset({"method.added", "method.changed"}),
        Phase.FAILED: frozenset({"method.add_failed"}),
    },
    "reset": {
        Phase.STARTED: frozenset({"reset.started"}),
        Phase.SUCCEEDED: frozenset({"reset.completed"}),
        Phase.FAILED: frozenset({"reset.failed"}),
    },
    "mfa": {
        Phase.STARTED: frozenset(),
        Phase.SUCCEEDED: frozenset({"mfa.succeeded"}),
        Phase.FAILED: frozenset({"mfa.failed"}),
    },
    "tap": {
        Phase.STARTED: frozenset({"tap.issued"}),
        Phase.SUCCEEDED: frozenset({"tap.used"}),
        Phase.FAILED: frozenset({"tap.failed"}),
    },
}


def parse_iso(text: str) -> float:
    """An ISO 8601 date or date-time (UTC when it has no offset) as a timestamp; ValueError."""
    try:
        value = dt.datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        # In UTC it must still be a year from 1 to 9999, or it could not be printed back.
        return value.astimezone(dt.UTC).timestamp()
    except (OverflowError, OSError) as exc:  # year 1 minus an offset, and the like
        raise ValueError(f"out of range: {text!r}") from exc


def iso(ts: float | None) -> str | None:
    """A store timestamp as ISO 8601 UTC (``2023-11-14T22:13:20Z``)."""
    if ts is None:
        return None
    # isoformat, not strftime: %Y drops the leading zeros of a year before 1000 on glibc.
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


# -- registration details -------------------------------------------------------------------------

REGISTRATION_COLUMNS = (
    "user_id",
    "display_name",
    "in_directory",
    "mfa_capable",
    "sspr_registered",
    "sspr_capable",
    "default_method",
    "methods",
    "locked",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistrationRow:
    user_id: str
    display_name: str
    #: False: the Directory does not know the user (or there was none, as in the CLI), so
    #: group-scoped policies were evaluated without groups
    in_directory: bool
    mfa_capable: bool
    sspr_registered: bool
    sspr_capable: bool
    #: the kind of the default MFA method (the most secure one when none was chosen)
    default_method: str | None
    #: the kinds registered, most secure first, each once
    methods: tuple[str, ...]
    #: MFA codes refused until a success or an admin's unlock (the durable failure counter)
    locked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "in_directory": self.in_directory,
            "mfa_capable": self.mfa_capable,
            "sspr_registered": self.sspr_registered,
            "sspr_capable": self.sspr_capable,
            "default_method": self.default_method,
            "methods": list(self.methods),
            "locked": self.locked,
        }


def _sspr_registered(kinds: set[MethodKind], policies: PolicyConfig) -> bool:
    sspr = policies.sspr
    usable = {k for k in kinds if k in sspr.methods and METHOD_RULES[k].sspr}
    if not sspr.allow_questions_alone and usable == {MethodKind.SECURITY_QUESTIONS}:
        return False  # questions never carry a reset alone unless the config says so
    return len(usable) >= sspr.methods_required


def _default_kind(methods: Sequence[MethodRecord], state: UserState) -> str | None:
    mfa = [m for m in methods if METHOD_RULES[m.kind].mfa]
    chosen = next((m for m in mfa if m.id == state.default_method_id), None)
    if chosen is None:
        chosen = min(mfa, key=lambda m: (METHOD_RULES[m.kind].rank, m.created_at), default=None)
    return chosen.kind.value if chosen else None


def registration_row(
    user_id: str,
    user: DirectoryUser | None,
    methods: Sequence[MethodRecord],
    state: UserState,
    policies: PolicyConfig,
    *,
    locked: bool = False,
) -> RegistrationRow:
    """One user's registration details.

    * MFA capable: enabled, with an MFA method of a kind the methods policy allows the user;
    * SSPR registered: enough distinct reset-capable kinds for ``methods_required`` (security
      questions alone do not count unless ``allow_questions_alone``);
    * SSPR capable: registered, enabled, and in scope of the SSPR policy.
    """
    groups = user.groups if user else frozenset()
    enabled = user.enabled if user else True
    kinds = {m.kind for m in methods}
    mfa_capable = enabled and any(
        METHOD_RULES[k].mfa and policies.method_allowed(k, user_id, groups) for k in kinds
    )
    registered = _sspr_registered(kinds, policies)
    return RegistrationRow(
        user_id=user_id,
        display_name=(user.display_name if user else "") or user_id,
        in_directory=user is not None,
        mfa_capable=mfa_capable,
        sspr_registered=registered,
        sspr_capable=registered and enabled and policies.sspr.applies(groups),
        default_method=_default_kind(methods, state),
        methods=tuple(k.value for k in sorted(kinds, key=lambda k: METHOD_RULES[k].rank)),
        locked=locked,
    )


# -- registration campaign ------------------------------------------------------------------------

CAMPAIGN_COLUMNS = (
    "user_id",
    "display_name",
    "status",
    "asked",
    "first_asked",
    "last_asked",
    "snoozes",
    "snoozed_until",
    "added",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CampaignRow:
    user_id: str
    display_name: str
    #: ``added`` (the app, or another method stronger than a phone, since being asked),
    #: ``snoozed`` (until ``snoozed_until``), ``required`` (no snooze left), ``asked`` (asked,
    #: snoozes left), ``pending`` (in scope, not asked yet), ``excluded`` (phones only, outside
    #: the campaign's audience: break-glass)
    status: str
    asked: int
    first_asked: float | None
    last_asked: float | None
    snoozes: int
    snoozed_until: float | None
    added: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "status": self.status,
            "asked": self.asked,
            "first_asked": iso(self.first_asked),
            "last_asked": iso(self.last_asked),
            "snoozes": self.snoozes,
            "snoozed_until": iso(self.snoozed_until),
            "added": iso(self.added),
        }


def campaign_row(
    user_id: str,
    user: DirectoryUser | None,
    methods: Sequence[MethodRecord],
    state: UserState,
    policies: PolicyConfig,
    now: float,
) -> CampaignRow | None:
    """One user's place in the registration campaign; None: it does not concern them (never
    asked, and not signing in with phones only)."""
    camp = campaign_state(state.extra)
    phones = phone_only(methods)
    if not camp.asked and not phones:
        return None
    policy = policies.campaign
    groups = user.groups if user else frozenset()
    if camp.added is not None or not phones:
        status = "added"
    elif not camp.asked:
        status = "pending" if policy.audience.contains(user_id, groups) else "excluded"
    elif camp.until is not None and camp.until > now:
        status = "snoozed"
    elif camp.snoozes >= policy.snoozes_allowed:
        status = "required"
    else:
        status = "asked"
    return CampaignRow(
        user_id=user_id,
        display_name=(user.display_name if user else "") or user_id,
        status=status,
        asked=camp.asked,
        first_asked=camp.first_asked,
        last_asked=camp.last_asked,
        snoozes=camp.snoozes,
        snoozed_until=camp.until,
        added=camp.added,
    )


# -- usage summary --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Activity:
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_by_reason: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_by_reason": dict(sorted(self.failed_by_reason.items())),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageSummary:
    since: float | None
    until: float | None
    users: int
    mfa_capable: int
    sspr_registered: int
    sspr_capable: int
    #: kind -> {"methods": registered now, "users": users having it, "added": added in the period}
    methods: Mapping[str, Mapping[str, int]]
    activity: Mapping[str, Activity]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "users": self.users,
            "mfa_capable": self.mfa_capable,
            "sspr_registered": self.sspr_registered,
            "sspr_capable": self.sspr_capable,
            "methods": {k: dict(v) for k, v in self.methods.items()},
            "activity": {k: v.to_json() for k, v in self.activity.items()},
        }

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows for a table or CSV: one per (section, name, measure)."""
        out: list[dict[str, Any]] = [
            {"section": "users", "name": name, "measure": "count", "value": value}
            for name, value in (
                ("total", self.users),
                ("mfa_capable", self.mfa_capable),
                ("sspr_registered", self.sspr_registered),
                ("sspr_capable", self.sspr_capable),
            )
        ]
        for kind, counts in self.methods.items():
            out += [
                {"section": "methods", "name": kind, "measure": m, "value": v}
                for m, v in counts.items()
            ]
        for name, act in self.activity.items():
            out += [
                {"section": name, "name": phase, "measure": "count", "value": value}
                for phase, value in (
                    ("started", act.started),
                    ("succeeded", act.succeeded),
                    ("failed", act.failed),
                )
            ]
            out += [
                {"section": name, "name": "failed", "measure": reason, "value": value}
                for reason, value in sorted(act.failed_by_reason.items())
            ]
        return out


def _activity(events: Iterable[AuditEvent], phases: Mapping[Phase, frozenset[str]]) -> Activity:
    counts: Counter[Phase] = Counter()
    reasons: Counter[str] = Counter()
    for e in events:
        for phase, names in phases.items():
            if e.event in names:
                counts[phase] += 1
                if phase is Phase.FAILED:
                    reasons[str(e.detail.get("reason") or "unspecified")] += 1
    return Activity(
        started=counts[Phase.STARTED],
        succeeded=counts[Phase.SUCCEEDED],
        failed=counts[Phase.FAILED],
        failed_by_reason=dict(reasons),
    )


def usage_summary(
    rows: Sequence[RegistrationRow],
    methods: Mapping[str, Sequence[MethodRecord]],
    events: Sequence[AuditEvent],
    *,
    since: float | None,
    until: float | None,
) -> UsageSummary:
    """The summary for a period; ``events`` may be wider than it (they are filtered here)."""
    in_period = [
        e for e in events if (since is None or e.at >= since) and (until is None or e.at < until)
    ]
    by_kind: dict[str, dict[str, int]] = {}
    for kind in sorted(MethodKind, key=lambda k: METHOD_RULES[k].rank):
        records = [m for ms in methods.values() for m in ms if m.kind is kind]
        added = sum(
            1 for e in in_period if e.event == "method.added" and e.detail.get("kind") == kind.value
        )
        if records or added:
            by_kind[kind.value] = {
                "methods": len(records),
                "users": len({m.user_id for m in records}),
                "added": added,
            }
    return UsageSummary(
        since=since,
        until=until,
        users=len(rows),
        mfa_capable=sum(r.mfa_capable for r in rows),
        sspr_registered=sum(r.sspr_registered for r in rows),
        sspr_capable=sum(r.sspr_capable for r in rows),
        methods=by_kind,
        activity={name: _activity(in_period, phases) for name, phases in ACTIVITY_EVENTS.items()},
    )


# -- audit log ------------------------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "event", "user_id", "ip", "outcome", "correlation_id", "detail")


def audit_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "event": event.event,
        "user_id": event.user_id,
        "ip": event.ip,
        "outcome": event.outcome,
        "correlation_id": event.correlation_id,
        "detail": dict(event.detail),
    }


# -- rendering ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True) if value else ""
    return str(value)


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as ``table`` (aligned text), ``csv`` (RFC 4180) or ``json`` (an array)."""
    if fmt == "json":
        return json.dumps([dict(r) for r in rows], indent=2, sort_keys=False)
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)

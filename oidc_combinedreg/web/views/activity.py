"""Recent activity ("My Sign-ins"): the signed-in user's own sign-ins and security-info changes.

Read from the audit log the middleware already writes (``Store.list_audit(user_id=...)``, the
call the admin reports use), never a second record: the last :data:`WINDOW` seconds, at most
:data:`MAX_EVENTS` of the user's events, of the types in :data:`SIGN_INS` and :data:`CHANGES`.
A row shows the time, the application (the event's ``client_id``: the sign-in and MFA events
name the client of the /authorize request being signed in to; shown by the host's display name
for it where the host offers one, ``authorization.ClientNames``), the approximate network, the
method used and the result, never a secret, a code, a method id, a correlation id or a whole
address: the network is the Conditional Access named location that
contains the address, else the address cut to its /24 (IPv4) or /48 (IPv6).

"This wasn't me" on a row (``/activity/not-me?ref=...``: GET asks, POST with the CSRF token
confirms) does what the notice's link does (:meth:`~oidc_combinedreg.notify.Notifier.secure_account`):
every session ends, this one included, the account is flagged and the next sign-in asks for a
password reset; a reported "method added" or "method changed" row also suspends that method.

Behind the manage pages' MFA gate: a user with an MFA method passes MFA first.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...authorization import client_name
from ...exceptions import AccessDenied
from ...methods.kinds import MethodKind
from ...store.base import AuditEvent
from ..i18n import N_
from ..render import Page, Redirect
from .common import METHOD_NAMES, describe_method
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["CHANGES", "SIGN_INS", "activity", "approximate_network", "not_me"]

#: how far back the page reaches (Microsoft's "My Sign-ins" shows 30 days)
WINDOW = 30 * 86400
#: the most of a user's audit events read for one page (newest first)
MAX_EVENTS = 2000
PAGE_SIZE = 20

#: sign-in events -> what the row says happened (msgid); the method comes from ``detail.kind``
SIGN_INS: dict[str, str] = {
    "signin.password": N_("Signed in with password"),
    "tap.used": N_("Signed in with a Temporary Access Pass"),
    "tap.failed": N_("Temporary Access Pass refused"),
    "mfa.succeeded": N_("Sign-in verification"),
    "mfa.failed": N_("Sign-in verification"),
    "ca.evaluated": N_("Sign-in blocked by your organization"),
    "signin.cancelled": N_("Sign-in cancelled"),
    "app_password.succeeded": N_("Signed in with an app password"),
    "app_password.failed": N_("App password refused"),
}
#: security-info changes -> what the row says (msgid)
CHANGES: dict[str, str] = {
    "method.added": N_("Method added"),
    "method.changed": N_("Method changed"),
    "method.deleted": N_("Method deleted"),
    "method.renamed": N_("Method renamed"),
    "method.default_changed": N_("Default sign-in method changed"),
    "method.restored": N_("Method restored"),
    "reset.completed": N_("Password reset"),
    "session.revoked_all": N_("Signed out everywhere"),
    "account.flagged": N_("Reported as not you"),
}
#: ``outcome`` -> the result column (msgid)
RESULTS: dict[str, str] = {
    "success": N_("Successful"),
    "failure": N_("Failed"),
    "blocked": N_("Blocked"),
    "info": N_("Done"),
}
#: the longest application name shown (as a method's name, decision 146)
NAME_LENGTH = 64
#: rows whose "This wasn't me" also suspends the method the change added or changed
_SUSPENDS = frozenset({"method.added", "method.changed"})
#: rows without "This wasn't me": the report itself (reporting a report secures nothing more)
_NOT_REPORTABLE = frozenset({"account.flagged"})


def approximate_network(web: WebApp, ip: str | None) -> str | None:
    """The named location that contains ``ip`` (Conditional Access), else the address's /24
    (IPv4) or /48 (IPv6) network; None without an address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    named = {loc.name for loc in web.config.conditional_access.named_locations}
    found = sorted(web.reg.ca.locations_of(address) & named)
    if found:
        return found[0]
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _shown(event: AuditEvent) -> bool:
    if event.event == "ca.evaluated":
        return event.outcome == "blocked"  # report-only results are the admin's, not a sign-in
    return event.event in SIGN_INS or event.event in CHANGES


def _refs(events: list[AuditEvent]) -> list[str]:
    """An opaque, stable name for each row (the audit log has no ids): a hash of the event and
    of how many identical events came before it in the list."""
    seen: dict[str, int] = {}
    refs = []
    for e in events:
        raw = json.dumps(
            [repr(e.at), e.event, e.outcome, e.ip, dict(e.detail)], sort_keys=True, default=str
        )
        n = seen[raw] = seen.get(raw, -1) + 1
        refs.append(hashlib.sha256(f"{raw}#{n}".encode()).hexdigest()[:24])
    return refs


def _events(web: WebApp, ctx: RequestContext, user_id: str) -> list[tuple[str, AuditEvent]]:
    """The user's own rows, newest first, each with its ref."""
    found = web.reg.store.list_audit(user_id=user_id, since=ctx.now - WINDOW, limit=MAX_EVENTS)
    shown = [e for e in found if e.user_id == user_id and _shown(e)]
    return list(zip(_refs(shown), shown, strict=True))


def _method_name(event: AuditEvent) -> str | None:
    kind = event.detail.get("kind")
    if isinstance(kind, str):
        try:
            return METHOD_NAMES[MethodKind(kind)]
        except ValueError:
            pass  # a kind this version does not know: the event's other names below
    if event.event == "signin.password":
        return N_("Password")
    if event.event.startswith("tap."):
        return N_("Temporary Access Pass")
    if event.event.startswith("app_password."):
        return METHOD_NAMES[MethodKind.APP_PASSWORD]
    return None


#: a Conditional Access block of the user action "register security information"
_REGISTRATION_BLOCKED = N_("Security info change blocked by your organization")


def _display_name(web: WebApp, client_id: str) -> str | None:
    """The host's name for the client, printable only (a name from open registration must not
    turn the text around it with a bidi override), white space collapsed, at most
    :data:`NAME_LENGTH` characters; None when the host has none."""
    name = client_name(web.reg.authorization, client_id)
    if name is None:
        return None
    kept = "".join(c for c in name if unicodedata.category(c)[0] != "C" or c in "\t\n")
    return " ".join(kept.split())[:NAME_LENGTH] or None


def _row(
    web: WebApp,
    ref: str,
    event: AuditEvent,
    names: dict[str, str | None] | None = None,
    methods: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One row; ``names``: the display names already asked of the host for this page;
    ``methods``: the user's methods described by id, to name the row's method apart."""
    client = event.detail.get("client_id")
    sign_in = event.event in SIGN_INS
    activity = SIGN_INS.get(event.event) or CHANGES[event.event]
    if event.event == "ca.evaluated":  # target: "application <client id>" or "user-action ..."
        kind, _, value = str(event.detail.get("target", "")).partition(" ")
        if kind == "application":
            client = value
        else:
            sign_in, activity = False, _REGISTRATION_BLOCKED
    application = str(client) if client else None
    names = {} if names is None else names
    if application is not None and application not in names:
        names[application] = _display_name(web, application)
    return {
        "ref": ref,
        "at": int(event.at),
        "category": "sign_in" if sign_in else "security_info",
        "event": event.event,
        "activity": activity,
        "application": application,
        "application_name": names.get(application) if application else None,
        "network": approximate_network(web, event.ip),
        "method": _method_name(event),
        # the method the row is about, while it exists: its name's parts, as on the list
        "method_described": (methods or {}).get(str(event.detail.get("method_id"))),
        "result": event.outcome,
        "result_text": RESULTS.get(event.outcome, N_("Done")),
        "not_me_url": None
        if event.event in _NOT_REPORTABLE
        else web.url("activity_not_me", ref=ref),
    }


def _guard(web: WebApp, ctx: RequestContext) -> Redirect | None:
    """The manage pages' MFA gate. Not their Conditional Access check of the user action
    "register security information": reading one's activity and reporting it registers
    nothing, and a user whom a policy keeps from registering on this network (travelling)
    must still be able to see a stranger's sign-in and lock them out."""
    return require_fresh_mfa(web, ctx, back="activity")


#: what names a method apart on a page (methods/names.py, decision 148)
_NAME_PARTS = frozenset({"kind", "name", "label", "ordinal", "created_at"})


def _page_number(ctx: RequestContext, pages: int) -> int:
    """``?page=``: a number from 1; anything else is the first page, past the end the last."""
    raw = ctx.arg("page") or "1"
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1
    return min(max(number, 1), pages)


def activity(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``GET /activity[?page=N]``: the page and its JSON twin."""
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    rows = _events(web, ctx, user.id)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    number = _page_number(ctx, pages)
    chunk = rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    names: dict[str, str | None] = {}  # the host is asked once per client on the page
    mine = web.reg.info.methods(user.id)
    # The name's parts only (decision 148): the twin carries no internal id.
    methods = {
        m.id: {k: v for k, v in describe_method(m, None, mine).items() if k in _NAME_PARTS}
        for m in mine
    }
    return Page(
        "activity",
        {
            "events": [_row(web, ref, e, names, methods) for ref, e in chunk],
            "pagination": {
                "page": number,
                "pages": pages,
                "total": len(rows),
                "previous": web.url("activity", page=number - 1) if number > 1 else None,
                "next": web.url("activity", page=number + 1) if number < pages else None,
            },
            "window_days": WINDOW // 86400,
        },
    )


def not_me(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/activity/not-me?ref=``: GET asks (naming the row), POST with the CSRF token secures
    the account. A ref that is not one of the user's rows is refused (403)."""
    if ctx.method == "POST":
        ctx.check_csrf()
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    ref = ctx.form("ref") if ctx.method == "POST" else ctx.arg("ref")
    found = next((e for r, e in _events(web, ctx, user.id) if r == ref), None)
    if found is None or found.event in _NOT_REPORTABLE:
        raise AccessDenied("no such activity for this user")
    if ctx.method != "POST":
        return Page("activity_not_me", {"event": _row(web, str(ref), found), "done": False})
    method_id = found.detail.get("method_id")
    wanted = [str(method_id)] if found.event in _SUSPENDS and method_id else []
    report = web.reg.info.notifier.secure_account(
        user.id,
        wanted,
        ip=ctx.ip,
        reason="user reported activity as not theirs",
        reported=found.event,
        reported_at=found.at,
    )
    ctx.session = None
    ctx.cookies.append(web.reg.sessions.clear_cookie_header())
    return Page(
        "activity_not_me",
        {
            "done": True,
            "suspended": len(report.suspended),
            "sessions_ended": report.sessions_revoked,
        },
    )

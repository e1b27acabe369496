"""``<prefix>/admin/``: the admin dashboard (browser session, admin group, fresh MFA).

The usage summary of the last 7, 30 or 90 days as inline SVG charts (methods registered by kind,
activity by outcome) with the same figures as tables, the accounts whose MFA codes are locked
(each with an "Unlock" button: a POST with the CSRF token, audited ``admin.unlocked``), and the
latest audit events. Every other change goes through the admin API or the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...admin.auth import is_admin
from ...admin.service import UnknownUser
from ...exceptions import AccessDenied, InvalidInput
from ..i18n import N_, gettext, using_language
from ..render import Page, Redirect
from .admin_charts import bar_chart
from .common import METHOD_NAMES
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["dashboard"]

PERIODS = (7, 30, 90)
LATEST_EVENTS = 25


def _period(ctx: RequestContext) -> int:
    text = ctx.arg("days") or ""
    return int(text) if text.isdigit() and int(text) in PERIODS else 30


def dashboard(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    _, user = ctx.require_session()
    if not is_admin(web.config.admin, user):
        raise AccessDenied("admin: not in the admin group")
    gate = require_fresh_mfa(web, ctx, back="admin")
    if gate is not None:
        return gate
    if ctx.method == "POST":
        ctx.check_csrf()
        try:
            web.reg.admin.unlock(ctx.form("user_id")[:200], actor=user.id, ip=ctx.ip)
        except UnknownUser:
            raise InvalidInput("user_id", "unknown user") from None
        return Redirect(web.url("admin_dashboard"))
    days = _period(ctx)
    summary = web.reg.admin.usage(since=ctx.now - days * 86400, until=None).to_json()
    events = web.reg.admin.audit(limit=LATEST_EVENTS)
    return Page(
        "admin_dashboard",
        {
            "days": days,
            "periods": list(PERIODS),
            "summary": summary,
            "events": events,
            "locked": web.reg.admin.locked_accounts(),
            "_charts": _charts(summary, ctx.lang),
            # the tables' row names, as msgids (the JSON twin keeps the identifiers)
            "_kind_names": {k.value: name for k, name in METHOD_NAMES.items()},
            "_activity_names": ACTIVITY_NAMES,
        },
    )


#: the usage summary's activities (reports.ACTIVITY_EVENTS) as the dashboard names them
ACTIVITY_NAMES = {
    "registration": N_("Security info registration"),
    "reset": N_("Password reset"),
    "mfa": N_("Sign-in verification"),
    "tap": N_("Temporary Access Pass"),
}


def _kind_name(kind: str) -> str:
    from ...methods.kinds import MethodKind

    try:
        return METHOD_NAMES[MethodKind(kind)]
    except ValueError:
        return kind


def _charts(summary: dict[str, Any], lang: str) -> dict[str, Any]:
    """The charts' SVG, its texts in the page's language (they are made here, not in the
    template, so they are translated here)."""
    with using_language(lang):
        return _charts_now(summary)


def _charts_now(summary: dict[str, Any]) -> dict[str, Any]:
    methods = summary["methods"]
    activity = summary["activity"]
    _ = gettext
    return {
        "methods": bar_chart(
            "chart-methods",
            _("Methods registered, by kind"),
            [(_(_kind_name(k)), [v["methods"]]) for k, v in methods.items()],
            [_("Registered")],
            empty=_("No data."),
        ),
        "activity": bar_chart(
            "chart-activity",
            _("Activity in the period"),
            [
                (_(ACTIVITY_NAMES.get(name, name)), [a["succeeded"], a["failed"]])
                for name, a in activity.items()
            ],
            [_("Succeeded"), _("Failed")],
            empty=_("No data."),
        ),
        "users": bar_chart(
            "chart-users",
            _("Users"),
            [
                (_("Users with security info"), [summary["users"]]),
                (_("MFA capable"), [summary["mfa_capable"]]),
                (_("SSPR registered"), [summary["sspr_registered"]]),
                (_("SSPR capable"), [summary["sspr_capable"]]),
            ],
            [_("Users")],
            empty=_("No data."),
        ),
    }

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
            "_charts": _charts(summary),
        },
    )


def _kind_name(kind: str) -> str:
    from ...methods.kinds import MethodKind

    try:
        return METHOD_NAMES[MethodKind(kind)]
    except ValueError:
        return kind


def _charts(summary: dict[str, Any]) -> dict[str, Any]:
    methods = summary["methods"]
    activity = summary["activity"]
    return {
        "methods": bar_chart(
            "chart-methods",
            "Methods registered, by kind",
            [(_kind_name(k), [v["methods"]]) for k, v in methods.items()],
            ["methods"],
        ),
        "activity": bar_chart(
            "chart-activity",
            "Activity in the period",
            [(name, [a["succeeded"], a["failed"]]) for name, a in activity.items()],
            ["succeeded", "failed"],
        ),
        "users": bar_chart(
            "chart-users",
            "Users",
            [
                ("registered users", [summary["users"]]),
                ("MFA capable", [summary["mfa_capable"]]),
                ("SSPR registered", [summary["sspr_registered"]]),
                ("SSPR capable", [summary["sspr_capable"]]),
            ],
            ["users"],
        ),
    }

"""``/not-me/<token>``: the "This wasn't me" link of the security-info-changed email.

No session is needed (the link is opened from a mailbox, maybe on another device): the unguessable,
single-use token is the authorization. GET only shows the page; the POST confirms, so a mail
scanner following links changes nothing. A cross-site POST is refused.

Confirming suspends the method(s) the reported change added or changed, in the same store write
that ends the sessions (``Notifier.not_me_report``, SECURITY.md case 59); the page says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...exceptions import AccessDenied
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["not_me"]


def not_me(web: WebApp, ctx: RequestContext) -> Page:
    token = str(ctx.path_args["token"])
    notifier = web.reg.info.notifier
    if ctx.method != "POST":
        valid = notifier.not_me_user(token) is not None
        return Page("not_me", {"valid": valid, "done": False}, 200 if valid else 404)
    if (ctx.header("Sec-Fetch-Site") or "").lower() == "cross-site":
        raise AccessDenied("csrf: cross-site request")
    report = notifier.not_me_report(token, ip=ctx.ip)
    if report is None:
        return Page("not_me", {"valid": False, "done": False}, 404)
    if ctx.session is not None and ctx.session.user_id == report.user_id:
        ctx.session = None
        ctx.cookies.append(web.reg.sessions.clear_cookie_header())
    return Page("not_me", {"valid": True, "done": True, "suspended": len(report.suspended)})

"""App password creation (manage mode only): name it -> the password is shown once -> done.

Never in the wizard (it is not a method for browser sign-in; the planner never plans it and this
handler refuses to run inside a sign-in), and only for users with per-user MFA enforced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied, InvalidInput
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    if ctx.cid is not None:
        raise AccessDenied("app passwords are created in manage mode only")
    _, user = ctx.require_session()
    service = web.reg.info.app_passwords
    if not service.may_register(user):
        return Page("app_password_unavailable", {}, 403)
    if step.get("stage") == "shown":
        # Shown exactly once: a reload or "Done" goes back to the overview.
        step["method_id"] = step["shown"]
        return None
    if action != "create":
        return Page("app_password_name", {"errors": {}, "values": {}})
    typed = ctx.form("name")
    try:
        setup, record = service.register(user, typed, ip=ctx.ip)
    except InvalidInput as exc:
        return Page(
            "app_password_name",
            {"errors": {"name": exc.message}, "values": {"name": typed[:64]}},
            400,
        )
    step.update({"stage": "shown", "shown": record.id})
    ctx.touch()
    return Page("app_password_created", {"name": setup.name, "password": setup.display})

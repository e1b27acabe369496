"""Push authenticator registration: get the app -> scan the QR code -> the device is added.

The device registers itself (``web/device_api.py``) with the QR code's one-time token, which is tied
to this session (``pending.push``); this page waits for it (``static/push.js`` polls
``/push/status``; without JavaScript, "Check again") and then reports the method as registered.
No amr is claimed: the enrollment proved possession of the session, not of a second factor. The
"let's try it out" moment is the MFA step that follows at once (the wizard and the manage page
both ask for MFA as soon as the user has an MFA-capable method), where the user approves a request
with number matching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..i18n import N_
from ..render import Page

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def _pending(ctx: RequestContext) -> dict[str, Any]:
    session, _ = ctx.require_session()
    pending: dict[str, Any] = session.data.setdefault("pending", {})
    return pending


def _server_url(web: WebApp, ctx: RequestContext) -> str:
    return ctx.request.host_url.rstrip("/") + web.prefix


def _setup_page(web: WebApp, ctx: RequestContext, notice: str | None = None) -> Page:
    import segno  # QR codes only on the enrolment page (benchmarks/import_time.py)

    _, user = ctx.require_session()
    pending = _pending(ctx)
    payload, state = web.reg.info.push.enrollment(
        user.id, user.email or user.id, pending.get("push"), server_url=_server_url(web, ctx)
    )
    if pending.get("push") != state:
        pending["push"] = state
        ctx.touch()
    uri = payload.uri()
    data = {
        "stage": "setup",
        "payload": uri,
        "account_name": payload.account,
        "expires_at": int(state["expires"]),
        "notice": notice,
        "_qr_svg": segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff"),
    }
    return Page("push_setup", data)


def _check_enrolled(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> bool:
    pending = _pending(ctx)
    status, method_id = web.reg.info.push.enrollment_status(pending.get("push"))
    if status != "done":
        return False
    pending.pop("push", None)
    step["method_id"] = method_id
    ctx.touch()
    return True


def _intro(web: WebApp) -> Page:
    push = web.config.push
    return Page(
        "push_intro", {"stage": "intro", "app_name": push.app_name, "app_url": push.app_url}
    )


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    stage = step.setdefault("stage", "intro")
    if stage == "intro":
        if action != "next":
            return _intro(web)
        stage = step["stage"] = "setup"
        ctx.touch()
        action = ""
    if action == "back":
        step["stage"] = "intro"
        ctx.touch()
        return _intro(web)
    if _check_enrolled(web, ctx, step):
        return None
    waiting = N_("We haven't heard from your device yet. Scan the code in the app.")
    return _setup_page(web, ctx, waiting if action == "next" else None)

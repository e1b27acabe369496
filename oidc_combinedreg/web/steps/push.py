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
from urllib.parse import quote

from ..i18n import N_
from ..render import Page
from ..views.pwa import app_url, device_base_url

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
    # With web_app_origin the app and its devices talk to that origin, not the IdP's.
    return device_base_url(web) or ctx.request.host_url.rstrip("/") + web.prefix


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
    # The built-in web app: the QR code opens it with the payload in the URL fragment, which
    # browsers never send, so the one-time token stays out of every server and proxy log.
    link = web_app_link(payload.server_url, uri) if web.config.push.web_app else None
    data = {
        "stage": "setup",
        "payload": uri,
        "app_link": link,
        "account_name": payload.account,
        "expires_at": int(state["expires"]),
        "notice": notice,
        "_qr_svg": segno.make(link or uri, error="m").svg_inline(
            scale=4, dark="#111", light="#fff"
        ),
    }
    return Page("push_setup", data)


def web_app_link(server_url: str, uri: str) -> str:
    """``https://idp.example/security-info/app/#enroll=<the combinedreg-push URI, encoded>``."""
    return app_url(server_url) + "#enroll=" + quote(uri, safe="")


def _check_enrolled(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> bool:
    pending = _pending(ctx)
    status, method_id = web.reg.info.push.enrollment_status(pending.get("push"))
    if status != "done":
        return False
    pending.pop("push", None)
    step["method_id"] = method_id
    ctx.touch()
    return True


def _intro(web: WebApp, ctx: RequestContext) -> Page:
    push = web.config.push
    name, url = push.app_name, push.app_url
    if push.web_app:
        # The built-in app needs no store: its page is where people "get" it.
        name = name or f"{web.config.general.organization} Authenticator".strip()
        url = url or app_url(push.server_url or _server_url(web, ctx))
    return Page("push_intro", {"stage": "intro", "app_name": name, "app_url": url})


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    stage = step.setdefault("stage", "intro")
    if stage == "intro":
        if action != "next":
            return _intro(web, ctx)
        stage = step["stage"] = "setup"
        ctx.touch()
        action = ""
    if action == "back":
        step["stage"] = "intro"
        ctx.touch()
        return _intro(web, ctx)
    if _check_enrolled(web, ctx, step):
        return None
    waiting = N_("We haven't heard from your device yet. Scan the code in the app.")
    return _setup_page(web, ctx, waiting if action == "next" else None)

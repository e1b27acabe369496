"""Email registration (password reset only): address -> code sent to it -> done. Also changes the
registered address (``step["replace"]``); the old one stays until the new one is verified."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...delivery.base import DeliveryFailed
from ...exceptions import (
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    RateLimited,
    VerificationFailed,
)
from ..i18n import N_
from ..render import Page
from ._codes import code_error, delivery_failed_page, send_error

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle"]


def _begin(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> Page | None:
    _, user = ctx.require_session()
    typed = ctx.form("email")[:300]
    data: dict[str, Any] = {"stage": "enter", "values": {"email": typed}, "errors": {}}
    try:
        sent, state = web.reg.info.email.register_begin(
            user.id,
            address=typed,
            ip=ctx.ip,
            pending=step.get("pending"),
            replace_id=step.get("replace"),
            lang=ctx.lang,
        )
    except InvalidInput as exc:
        data["errors"][exc.field] = exc.message
        return Page("email_enter", data, 400)
    except RateLimited as exc:
        if exc.scope != "resend":
            raise
        data["errors"]["send"] = send_error(exc)
        return Page("email_enter", data, 429, (("Retry-After", str(exc.retry_after)),))
    except DeliveryFailed as exc:
        return delivery_failed_page("email_enter", data, exc)
    step.update({"stage": "verify", "pending": state, "sent": sent.as_dict(), "typed": typed})
    ctx.touch()
    return None


def handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    stage = step.setdefault("stage", "enter")
    if stage == "enter":
        if action != "next":
            return Page("email_enter", {"stage": "enter", "values": {}, "errors": {}})
        page = _begin(web, ctx, step)
        if page is not None:
            return page
    elif action == "back":
        step["stage"] = "enter"
        ctx.touch()
        return Page("email_enter", {"stage": "enter", "values": {}, "errors": {}})
    data: dict[str, Any] = {
        "stage": "verify",
        "sent": step.get("sent", {}),
        "errors": {},
        "values": {},
    }
    if action == "next" and ctx.form("resend") == "1" and stage == "verify":
        # Send again to the same address, after the cool-down.
        problem = _begin_again(web, ctx, step)
        data["sent"] = step.get("sent", {})
        if problem:
            data["errors"]["send"] = problem
            return Page("email_verify", data, 429)
        return Page("email_verify", data)
    if action != "verify":
        return Page("email_verify", data)
    _, user = ctx.require_session()
    code = ctx.form("code")
    try:
        record = web.reg.info.email.register_complete(user.id, step.get("pending"), code, ip=ctx.ip)
    except (InvalidInput, VerificationFailed, CodeReused, ChallengeExpired) as exc:
        data["errors"]["code"] = code_error(exc)
        data["values"]["code"] = code if len(code) <= 20 else ""
        return Page("email_verify", data, 400)
    step.pop("pending", None)
    step["method_id"] = record.id  # no "amr": an email code is never MFA
    ctx.touch()
    return None


def _begin_again(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> str | None:
    _, user = ctx.require_session()
    pending = step.get("pending") or {}
    try:
        sent, state = web.reg.info.email.register_begin(
            user.id,
            address=pending.get("email"),
            ip=ctx.ip,
            pending=pending,
            replace_id=step.get("replace"),
            lang=ctx.lang,
        )
    except RateLimited as exc:
        if exc.scope != "resend":
            raise
        return send_error(exc)
    except (DeliveryFailed, InvalidInput):
        return N_("We couldn't send the code right now. Try again later.")
    step.update({"pending": state, "sent": sent.as_dict()})
    ctx.touch()
    return None

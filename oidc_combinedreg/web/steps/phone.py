"""Mobile and alternate phone registration: country + number + "Text me" / "Call me" -> enter the
code -> done. Also changes a registered phone (``step["replace"]``): the old number stays until the
new one is verified. The office phone comes from the Directory and has no step."""

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
from ...methods.kinds import MethodKind
from ...methods.phone import PhoneChannel, amr_for
from ..i18n import N_
from ..render import Page
from ._codes import code_error, countries, delivery_failed_page, send_error

if TYPE_CHECKING:
    from ...service.phone import PhoneService
    from ..app import WebApp
    from ..context import RequestContext
    from ..render import Redirect

__all__ = ["handle_alternate", "handle_mobile"]


def _service(web: WebApp, kind: MethodKind) -> PhoneService:
    svc: PhoneService = getattr(web.reg.info, kind.value)
    return svc


def _enter_data(web: WebApp, ctx: RequestContext, svc: PhoneService) -> dict[str, Any]:
    cfg = web.config.phone
    return {
        "stage": "enter",
        "kind": svc.kind.value,
        "channels": [c.value for c in svc.channels()],
        "countries": countries(ctx.lang, cfg.allowed_regions),
        "values": {"country": cfg.default_region, "number": "", "channel": ""},
        "errors": {},
    }


def _begin(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], svc: PhoneService
) -> Page | None:
    """Send the first code; None when it went out (the step moves to "verify")."""
    _, user = ctx.require_session()
    data = _enter_data(web, ctx, svc)
    typed = {k: ctx.form(k)[:64] for k in ("country", "number", "channel")}
    data["values"] = typed
    try:
        sent, state = svc.register_begin(
            user.id,
            number=typed["number"],
            region=typed["country"],
            channel=typed["channel"],
            ip=ctx.ip,
            pending=step.get("pending"),
            replace_id=step.get("replace"),
            lang=ctx.lang,
        )
    except InvalidInput as exc:
        data["errors"][exc.field] = exc.message
        return Page("phone_enter", data, 400)
    except RateLimited as exc:
        if exc.scope != "resend":
            raise
        data["errors"]["send"] = send_error(exc)
        return Page("phone_enter", data, 429, (("Retry-After", str(exc.retry_after)),))
    except DeliveryFailed as exc:
        return delivery_failed_page("phone_enter", data, exc)
    step.update({"stage": "verify", "pending": state, "sent": sent.as_dict()})
    ctx.touch()
    return None


def _resend(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], svc: PhoneService
) -> dict[str, Any]:
    _, user = ctx.require_session()
    errors: dict[str, str] = {}
    try:
        sent, state = svc.resend(
            user.id,
            step.get("pending"),
            ip=ctx.ip,
            channel=ctx.form("channel") or None,
            lang=ctx.lang,
        )
    except RateLimited as exc:
        if exc.scope != "resend":
            raise
        errors["send"] = send_error(exc)
    except DeliveryFailed:
        errors["send"] = N_("We couldn't send the code right now. Try again later.")
    else:
        step.update({"pending": state, "sent": sent.as_dict()})
        ctx.touch()
    return errors


def _handle(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str, kind: MethodKind
) -> Page | Redirect | None:
    svc = _service(web, kind)
    stage = step.setdefault("stage", "enter")
    if stage == "enter":
        if action == "next":
            page = _begin(web, ctx, step, svc)
            if page is not None:
                return page
        else:
            return Page("phone_enter", _enter_data(web, ctx, svc))
    if action == "back":
        step.update({"stage": "enter"})
        ctx.touch()
        return Page("phone_enter", _enter_data(web, ctx, svc))
    data: dict[str, Any] = {
        "stage": "verify",
        "kind": kind.value,
        "sent": step.get("sent", {}),
        "channels": [c.value for c in svc.channels()],
        "errors": {},
        "values": {},
    }
    if action == "next" and ctx.form("resend") == "1":
        data["errors"] = _resend(web, ctx, step, svc)
        data["sent"] = step.get("sent", {})
        return Page("phone_verify", data, 429 if data["errors"] else 200)
    if action != "verify":
        return Page("phone_verify", data)
    _, user = ctx.require_session()
    code = ctx.form("code")
    try:
        record = svc.register_complete(user.id, step.get("pending"), code, ip=ctx.ip)
    except (InvalidInput, VerificationFailed, CodeReused, ChallengeExpired) as exc:
        data["errors"]["code"] = code_error(exc)
        data["values"]["code"] = code if len(code) <= 20 else ""
        return Page("phone_verify", data, 400)
    step.pop("pending", None)
    step["method_id"] = record.id
    # A verified number proves possession of an MFA factor (a text or a call).
    step["amr"] = amr_for(PhoneChannel(str(record.data.get("verified_by", "sms"))))
    ctx.touch()
    return None


def handle_mobile(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    return _handle(web, ctx, step, action, MethodKind.MOBILE_PHONE)


def handle_alternate(
    web: WebApp, ctx: RequestContext, step: dict[str, Any], action: str
) -> Page | Redirect | None:
    return _handle(web, ctx, step, action, MethodKind.ALTERNATE_PHONE)

"""``/reset``: "Forgot your password?" (self-service password reset). Thin: the flow is
``service/reset.py``.

URLs, one per step: ``/reset`` (name the account), ``/reset/method`` (choose a method),
``/reset/verify`` (enter the code or answers), ``/reset/password`` (the new password). A GET of a
step that is not the flow's current one redirects to the current one; a POST to it is refused
(forced browsing, SECURITY.md case 47). The pages ignore any sign-in session in the browser: the
flow has its own cookie and CSRF token, and never puts a user in a session (case 48).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from ...directory import PasswordRejected
from ...exceptions import (
    AccessDenied,
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    VerificationFailed,
)
from ...policy.reset import ResetChoice
from ...service.reset import FLOW_TTL, ResetFlow, ResetService, ResetStep
from ..i18n import N_
from ..render import Page, Redirect

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["reset", "reset_step"]

_STEP_OF_URL = {
    "method": ResetStep.CHOOSE,
    "verify": ResetStep.VERIFY,
    "password": ResetStep.PASSWORD,
}
_URL_OF_STEP = {v: k for k, v in _STEP_OF_URL.items()}


def _cookie_name(web: WebApp) -> str:
    return web.config.web.cookie_name + "-reset"


def _set_cookie(web: WebApp, ctx: RequestContext, token: str | None) -> None:
    name = _cookie_name(web)
    parts = [f"{name}={token or ''}", "Path=/", "HttpOnly", "SameSite=Strict"]
    parts.append(f"Max-Age={FLOW_TTL}" if token else "Max-Age=0")
    if web.config.web.secure_cookies:
        parts.append("Secure")
    ctx.cookies.append("; ".join(parts))


def _service(web: WebApp) -> ResetService:
    service: ResetService = web.reg.password_reset
    return service


def _url(web: WebApp, step: ResetStep) -> str:
    if step is ResetStep.ACCOUNT:
        return web.url("reset")
    return web.url("reset_step", step=_URL_OF_STEP[step])


def _detach(ctx: RequestContext) -> None:
    # A sign-in session in this browser plays no part here (and is neither shown nor saved).
    ctx.session, ctx.user = None, None


def _check_csrf(ctx: RequestContext, flow: ResetFlow) -> None:
    if (ctx.header("Sec-Fetch-Site") or "").lower() == "cross-site":
        raise AccessDenied("csrf: cross-site request")
    sent = ctx.header("X-CSRF-Token") or ctx.form("csrf_token")
    if not sent or not hmac.compare_digest(sent.encode(), flow.csrf.encode()):
        raise AccessDenied("csrf: missing or wrong token")


def reset(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/reset``: GET shows the current step (starting a flow); POST names the account."""
    _detach(ctx)
    service = _service(web)
    token = ctx.cookie(_cookie_name(web))
    if ctx.method != "POST":
        flow = service.load(token)
        if flow is None or ctx.arg("restart"):
            token, flow = service.start()
            _set_cookie(web, ctx, token)
        if flow.step is not ResetStep.ACCOUNT:
            return Redirect(_url(web, flow.step))
        return _page(web, flow)
    return _post(web, ctx, ResetStep.ACCOUNT)


def reset_step(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/reset/<step>``: only the flow's current step; anything else goes back to it."""
    _detach(ctx)
    wanted = _STEP_OF_URL.get(str(ctx.path_args["step"]))
    if wanted is None:
        return Page("error", {"error": "not_found"}, 404)
    if ctx.method == "POST":
        return _post(web, ctx, wanted)
    flow = _service(web).load(ctx.cookie(_cookie_name(web)))
    if flow is None:
        return Redirect(web.url("reset"))
    if flow.step is not wanted:
        return Redirect(_url(web, flow.step))
    return _page(web, flow)


def _post(web: WebApp, ctx: RequestContext, wanted: ResetStep) -> Page | Redirect:
    service = _service(web)
    flow = service.take(ctx.cookie(_cookie_name(web)))
    if flow is None:
        _set_cookie(web, ctx, None)
        return Page("reset_expired", {}, 400)
    keep: ResetFlow | None = flow
    try:
        _check_csrf(ctx, flow)
        if ctx.form("action") == "restart":
            keep = service.fresh()
            return Redirect(web.url("reset"))
        if flow.step is not wanted:
            service.password_failed(flow, "out_of_order", ip=ctx.ip)
            return Page("reset_out_of_order", {"next": _url(web, flow.step)}, 409)
        result, keep = _advance(web, ctx, flow)
        return result
    finally:
        # Whatever happened (an error page included), the flow goes on under a new token, or
        # ends (done): the old token was used up by take().
        _set_cookie(web, ctx, service.save(keep) if keep is not None else None)


def _advance(
    web: WebApp, ctx: RequestContext, flow: ResetFlow
) -> tuple[Page | Redirect, ResetFlow | None]:
    """Run the step's action; returns the response and the flow to keep (None: finished)."""
    service = _service(web)
    action = ctx.form("action")
    try:
        if flow.step is ResetStep.ACCOUNT:
            nxt = service.name_account(flow, ctx.form("account"), ip=ctx.ip)
        elif flow.step is ResetStep.CHOOSE:
            nxt = service.choose(flow, ctx.form("choice"), ip=ctx.ip, lang=ctx.lang)
        elif action == "other":
            nxt = _back_to_chooser(flow)
        elif flow.step is ResetStep.VERIFY and action == "resend":
            nxt = service.resend(flow, ip=ctx.ip, lang=ctx.lang)
        elif flow.step is ResetStep.VERIFY:
            nxt = service.verify(flow, ctx.fields(), ip=ctx.ip)
        else:
            return _set_password(web, ctx, flow)
    except (InvalidInput, VerificationFailed, ChallengeExpired, CodeReused) as exc:
        return _page(web, flow, errors=_errors(exc), values=_values(ctx, flow), status=400), flow
    return Redirect(_url(web, nxt.step)), nxt


def _back_to_chooser(flow: ResetFlow) -> ResetFlow:
    from dataclasses import replace

    return replace(flow, step=ResetStep.CHOOSE, choice=None, method={})


def _set_password(
    web: WebApp, ctx: RequestContext, flow: ResetFlow
) -> tuple[Page | Redirect, ResetFlow | None]:
    service = _service(web)
    try:
        service.set_password(flow, ctx.form("password"), ctx.form("confirm"), ip=ctx.ip)
    except InvalidInput as exc:
        service.password_failed(flow, "invalid", ip=ctx.ip)
        return _page(web, flow, errors={exc.field: exc.message}, status=400), flow
    except PasswordRejected as exc:
        service.password_failed(flow, "password_rejected", ip=ctx.ip)
        return _page(web, flow, reasons=list(exc.reasons), status=400), flow
    data = {"hook": service.on_password_reset is not None}
    return Page("reset_done", data), None


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidInput) and exc.field in ("account", "choice", "answers"):
        return {exc.field: exc.message}
    if isinstance(exc, ChallengeExpired):
        return {"code": N_("This code expired. Send a new one or choose another method.")}
    if isinstance(exc, CodeReused):
        return {"code": N_("That code was already used. Wait for the next code in your app.")}
    return {"code": N_("That didn't work. Check and try again.")}


def _values(ctx: RequestContext, flow: ResetFlow) -> dict[str, str]:
    # Only the account name comes back (answers and codes are never echoed into the page).
    if flow.step is ResetStep.ACCOUNT:
        return {"account": ctx.form("account")[:256]}
    return {}


def _page(
    web: WebApp,
    flow: ResetFlow,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    reasons: list[str] | None = None,
    status: int = 200,
) -> Page:
    service = _service(web)
    sspr = web.config.policies.sspr
    data: dict[str, Any] = {
        "csrf_token": flow.csrf,
        "step": flow.step.value,
        "errors": errors or {},
        "values": values or {},
        "required": sspr.methods_required,
        "passed": len(flow.passed),
    }
    if flow.step is ResetStep.CHOOSE:
        data["choices"] = [c.value for c in service.choices(flow)]
        return Page("reset_choose", data, status)
    if flow.step is ResetStep.VERIFY:
        assert flow.choice is not None
        data["choice"] = flow.choice.value
        data["questions"] = service.questions(flow)
        data["can_resend"] = flow.choice not in (ResetChoice.APP_CODE, ResetChoice.QUESTIONS)
        return Page("reset_verify", data, status)
    if flow.step is ResetStep.PASSWORD:
        data["reasons"] = reasons or []
        return Page("reset_password", data, status)
    return Page("reset_account", data, status)

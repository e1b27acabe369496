"""Manage mode ("My security info"): list, add, delete, change the default, sign out everywhere.

Every page and action here sits behind the MFA gate and the Conditional Access user action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied
from ...methods.kinds import METHOD_RULES, MethodKind
from ..render import Page, Redirect
from ..steps import HANDLERS
from .common import METHOD_NAMES, describe_method
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["add", "delete", "overview", "set_default", "signout_everywhere"]


def _guard(web: WebApp, ctx: RequestContext) -> Page | Redirect | None:
    _, user = ctx.require_session()
    gate = require_fresh_mfa(web, ctx)
    if gate is not None:
        return gate
    return web.reg.check_registration_action(ctx, user)


def _addable(web: WebApp, ctx: RequestContext) -> list[dict[str, str]]:
    _, user = ctx.require_session()
    have = [m.kind for m in web.reg.info.methods(user.id)]
    out = []
    for kind in sorted(HANDLERS, key=lambda k: METHOD_RULES[k].rank):
        if not web.config.policies.method_allowed(kind, user.id, user.groups):
            continue
        if have.count(kind) >= METHOD_RULES[kind].per_user:
            continue
        if kind is MethodKind.APP_PASSWORD and not web.reg.info.app_passwords.may_register(user):
            continue
        out.append({"kind": kind.value, "name": METHOD_NAMES[kind]})
    return out


def overview(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    _, user = ctx.require_session()
    methods = web.reg.info.methods(user.id)
    default = web.reg.info.default_method(user.id, methods)
    default_id = default.id if default else None
    return Page(
        "manage",
        {
            "methods": [describe_method(m, default_id) for m in methods],
            "default": describe_method(default, default_id) if default else None,
            "addable": _addable(web, ctx),
            "notice": ctx.arg("done") or None,
        },
    )


def add(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    blocked = _guard(web, ctx)
    if blocked is not None:
        return blocked
    session, user = ctx.require_session()
    raw_kind = str(ctx.request.view_args["kind"])  # type: ignore[attr-defined]
    allowed = {a["kind"] for a in _addable(web, ctx)}
    if raw_kind not in allowed:
        raise AccessDenied("method not addable")
    kind = MethodKind(raw_kind)
    state: dict[str, Any] = session.data.setdefault("manage_add", {})
    if state.get("kind") != kind.value:
        state.clear()
        state.update({"kind": kind.value, "step": {}})
        ctx.touch()
    action = ""
    if ctx.method == "POST":
        ctx.check_csrf()
        action = ctx.form("action")
    result = HANDLERS[kind](web, ctx, state["step"], action)
    if result is None:
        session.data.pop("manage_add", None)
        ctx.touch()
        return Redirect(web.url("manage", done="added"))
    if isinstance(result, Page):
        result.data["progress"] = None
        result.data["mode"] = "manage"
    return result


def _post(web: WebApp, ctx: RequestContext) -> Page | Redirect | None:
    if ctx.method != "POST":
        return Redirect(web.url("manage"))
    ctx.check_csrf()
    return _guard(web, ctx)


def delete(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    stop = _post(web, ctx)
    if stop is not None:
        return stop
    _, user = ctx.require_session()
    method_id = str(ctx.request.view_args["method_id"])  # type: ignore[attr-defined]
    if not web.reg.info.delete_method(user.id, method_id, ip=ctx.ip):
        raise AccessDenied("no such method for this user")
    return Redirect(web.url("manage", done="deleted"))


def set_default(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    stop = _post(web, ctx)
    if stop is not None:
        return stop
    _, user = ctx.require_session()
    if not web.reg.info.set_default(user.id, ctx.form("method_id"), ip=ctx.ip):
        raise AccessDenied("no such MFA method for this user")
    return Redirect(web.url("manage", done="default"))


def signout_everywhere(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    stop = _post(web, ctx)
    if stop is not None:
        return stop
    session, user = ctx.require_session()
    count = web.reg.store.delete_user_sessions(user.id)
    web.reg.info.audit("session.revoked_all", user.id, "success", ip=ctx.ip, count=count)
    ctx.session = None
    ctx.cookies.append(web.reg.sessions.clear_cookie_header())
    return Page("signed_out_everywhere", {"count": count})

"""The interrupt wizard ("Keep your account secure") after password sign-in.

Progress lives in the session under ``wizard`` (so a reload or a browser restart within the sign-in
resumes where the user was): the plan from the core planner, the current step, the methods added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import ChallengeExpired
from ...methods.kinds import MethodKind
from ...policy.planner import plan_registration
from ...policy.signin import StepKind, registration_needs
from ..render import Page, Redirect
from ..steps import HANDLERS
from .common import METHOD_NAMES, describe_method

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["wizard"]

_ACTIONS = {"next", "back", "verify", "choose", "finish", "looks_good"}


def _new_wizard(web: WebApp, ctx: RequestContext, cid: str) -> dict[str, Any]:
    session, user = ctx.require_session()
    cont = web.reg.flow.continuation(session, cid)
    facts = web.reg.flow.facts(session, user, cont, ctx.now)
    needs = registration_needs(facts, web.config.policies)
    plan = plan_registration(
        needs=needs,
        user_id=user.id,
        groups=user.groups,
        methods=facts.methods,
        policies=web.config.policies,
        registrable=HANDLERS.keys(),
    )
    return {
        "cid": cid,
        "needs": [n.value for n in needs],
        "plan": [k.value for k in plan.steps],
        "alternatives": [k.value for k in plan.alternatives],
        "reconfirm": plan.reconfirm_only,
        "unsatisfiable": plan.unsatisfiable,
        "i": 0,
        "step": {},
        "added": [],
    }


def _summary(web: WebApp, ctx: RequestContext, name: str, wiz: dict[str, Any]) -> Page:
    _, user = ctx.require_session()
    methods = web.reg.info.methods(user.id)
    default = web.reg.info.default_method(user.id, methods)
    return Page(
        name,
        {
            "methods": [describe_method(m, default.id if default else None) for m in methods],
            "default": describe_method(default, default.id) if default else None,
            "added": list(wiz.get("added", [])),
        },
    )


def _finish(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> Redirect:
    session, user = ctx.require_session()
    web.reg.info.record_confirmed(user.id)
    session.data["reg_done"] = True
    session.data.pop("wizard", None)
    ctx.touch()
    return Redirect(web.url("signin", c=wiz["cid"]))


def wizard(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    session, user = ctx.require_session()
    cid = ctx.cid
    cont = web.reg.flow.continuation(session, cid)
    if cid is None or cont is None:
        raise ChallengeExpired("unknown continuation")
    # Users who already have an MFA method prove it before touching their security info.
    if web.reg.info.mfa_methods(user.id) and session.data.get("mfa_at") is None:
        return Redirect(web.url("mfa", c=cid))
    wiz = session.data.get("wizard")
    if not isinstance(wiz, dict) or wiz.get("cid") != cid:
        # No forced browsing: the wizard runs only when the sign-in really needs registration.
        if web.reg.decide(ctx, session, user, cont).kind is not StepKind.REGISTER:
            return Redirect(web.url("signin", c=cid))
        wiz = _new_wizard(web, ctx, cid)
        session.data["wizard"] = wiz
        ctx.touch()
    # The wizard is the user action "register security information": Conditional Access decides
    # on every request, including the one that commits (an IP change mid-flow is caught).
    blocked = web.reg.check_registration_action(ctx, user)
    if blocked is not None:
        return blocked
    action = ctx.form("action") if ctx.method == "POST" else ""
    if ctx.method == "POST":
        ctx.check_csrf()
        if action not in _ACTIONS:
            action = ""
    if wiz.get("unsatisfiable"):
        return Page("wizard_unsatisfiable", {"needs": wiz["needs"]}, 409)
    plan: list[str] = wiz["plan"]
    if wiz["reconfirm"] and not plan:
        if action == "looks_good":
            return _finish(web, ctx, wiz)
        return _summary(web, ctx, "reconfirm", wiz)
    if action == "choose" or ctx.arg("choose") == "1":
        chosen = ctx.form("kind") if ctx.method == "POST" else ""
        if wiz["i"] < len(plan) and chosen in wiz["alternatives"]:
            wiz["alternatives"] = [k for k in wiz["alternatives"] if k != chosen] + [plan[wiz["i"]]]
            plan[wiz["i"]] = chosen
            wiz["step"] = {}
            ctx.touch()
            return Redirect(web.url("wizard", c=cid))
        return Page(
            "wizard_choose",
            {
                "alternatives": [
                    {"kind": k, "name": METHOD_NAMES[MethodKind(k)]}
                    for k in wiz["alternatives"]
                    if MethodKind(k) in HANDLERS
                ],
            },
        )
    if wiz["i"] >= len(plan):
        if action == "finish":
            return _finish(web, ctx, wiz)
        return _summary(web, ctx, "wizard_summary", wiz)
    kind = MethodKind(plan[wiz["i"]])
    step: dict[str, Any] = wiz["step"]
    if step.get("stage") == "added":
        if action == "next":
            wiz["i"] += 1
            wiz["step"] = {}
            ctx.touch()
            return Redirect(web.url("wizard", c=cid))
        page = Page("method_added", {"kind": kind.value, "name": METHOD_NAMES[kind]})
    else:
        result = HANDLERS[kind](web, ctx, step, action)
        if result is None:
            session = ctx.session or session
            wiz["added"].append(step["method_id"])
            step["stage"] = "added"
            # A verified new MFA method proves possession: this sign-in now has MFA.
            if step.get("amr"):
                new = web.reg.sessions.rotate(session)
                web.reg.flow.mark_mfa(new, [str(step["amr"])], ctx.now)
                ctx.session = new
            ctx.touch()
            return Redirect(web.url("wizard", c=cid))
        if isinstance(result, Redirect):
            return result
        page = result
    page.data.update(
        {
            "progress": {
                "current": wiz["i"] + 1,
                "total": len(plan),
                "kind": kind.value,
                "name": METHOD_NAMES[kind],
            },
            "can_choose_other": bool([k for k in wiz["alternatives"] if MethodKind(k) in HANDLERS]),
            "needs": wiz["needs"],
        }
    )
    return page

"""The interrupt wizard ("Keep your account secure") after password sign-in.

Progress lives in the session under ``wizard``: the plan from the core planner, the current step,
the methods added; methods themselves are in the store, so a new sign-in after a browser restart plans
only what is still missing. Postponements ("skip") are counted in the user's stored state, never in
the session, so replaying a request cannot make them endless.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied, ChallengeExpired
from ...methods.kinds import METHOD_RULES, MethodKind
from ...policy.planner import plan_registration
from ...policy.signin import (
    RegistrationNeed,
    SignInFacts,
    StepKind,
    registration_needs,
    skip_refusal,
    skips_left,
)
from ..render import Page, Redirect
from ..steps import HANDLERS, registrable
from .common import METHOD_NAMES, describe_method
from .signin import require_fresh_mfa

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["wizard"]

_ACTIONS = {"next", "back", "verify", "choose", "finish", "looks_good", "skip", "start", "send"}


def _new_wizard(web: WebApp, ctx: RequestContext, cid: str, facts: SignInFacts) -> dict[str, Any]:
    _, user = ctx.require_session()
    needs = registration_needs(facts, web.config.policies)
    plan = plan_registration(
        needs=needs,
        user_id=user.id,
        groups=user.groups,
        methods=facts.methods,
        policies=web.config.policies,
        registrable=registrable(web),
    )
    return {
        "cid": cid,
        "needs": [n.value for n in needs],
        "plan": [s.kind.value for s in plan.steps],
        "purpose": [s.purpose for s in plan.steps],
        "alternatives": [k.value for k in plan.alternatives],
        "reconfirm": plan.reconfirm_only,
        "unsatisfiable": plan.unsatisfiable,
        "missing": list(plan.missing),
        # Legacy mode: users outside combined registration see MFA and SSPR as two separate parts.
        "legacy": not web.config.policies.combined_registration.applies(user.groups),
        "i": 0,
        "step": {},
        "added": [],
    }


def _method_list(web: WebApp, user_id: str) -> dict[str, Any]:
    methods = web.reg.info.methods(user_id)
    default = web.reg.info.default_method(user_id, methods)
    default_id = default.id if default else None
    return {
        "methods": [describe_method(m, default_id, methods) for m in methods],
        "default": describe_method(default, default_id, methods) if default else None,
    }


def _skips(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> int:
    _, user = ctx.require_session()
    needs = [RegistrationNeed(n) for n in wiz["needs"]]
    return skips_left(needs, web.reg.info.state(user.id), web.config.policies, ctx.now)


def _skip_info(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> dict[str, Any]:
    """What the page says about postponing (issue 19.5): how many times, until when, and why not
    when it can't be put off any more."""
    _, user = ctx.require_session()
    needs = [RegistrationNeed(n) for n in wiz["needs"]]
    state = web.reg.info.state(user.id)
    policies = web.config.policies
    deadline = policies.mfa_registration.deadline
    return {
        "skips_left": skips_left(needs, state, policies, ctx.now),
        "skip_refused": skip_refusal(needs, state, policies, ctx.now),
        "skip_deadline": deadline.isoformat() if deadline else None,
        # for the date filter (page's language); leading "_": not in the JSON twin
        "_skip_deadline_at": (
            dt.datetime.combine(deadline, dt.time(12), tzinfo=dt.UTC) if deadline else None
        ),
    }


def _finish(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> Redirect:
    session, user = ctx.require_session()
    web.reg.info.record_confirmed(user.id)
    web.reg.info.audit(
        "registration.completed",
        user.id,
        "success",
        ip=ctx.ip,
        added=len(wiz.get("added", [])),
        needs=wiz["needs"],
    )
    return _done(web, ctx, wiz)


def _done(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> Redirect:
    """Registration handled in this sign-in: its continuation is taken back in the same session
    write, and the browser goes straight to the /authorize request, whose guard decides what
    comes next (decision 212)."""
    session, _ = ctx.require_session()
    session.data["reg_done"] = True
    session.data.pop("wizard", None)
    ctx.touch()
    url = web.reg.flow.pop_continuation(session, str(wiz["cid"]))
    return Redirect(url if url is not None else web.url("signin", c=wiz["cid"]))


def _skip(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> Redirect:
    session, user = ctx.require_session()
    if _skips(web, ctx, wiz) <= 0:
        raise AccessDenied("no postponement left")
    state = web.reg.info.state(user.id)
    days = web.config.policies.mfa_registration.skip_days
    web.reg.store.put_user_state(
        replace(state, skips_used=state.skips_used + 1, snoozed_until=ctx.now + days * 86400),
        events=[
            web.reg.info.event(
                "registration.postponed",
                user.id,
                "info",
                ip=ctx.ip,
                skips_used=state.skips_used + 1,
                days=days,
            )
        ],
    )
    return _done(web, ctx, wiz)


def _enter(web: WebApp, ctx: RequestContext) -> dict[str, Any] | Redirect:
    """The wizard state for this continuation, or where to go instead."""
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
        # One evaluation (Conditional Access included) serves the check and the plan.
        facts = web.reg.sign_in_facts(ctx, session, user, cont)
        if web.reg.flow.next_step(facts).kind is not StepKind.REGISTER:
            return Redirect(web.url("signin", c=cid))
        wiz = _new_wizard(web, ctx, cid, facts)
        web.reg.info.audit(
            "registration.started", user.id, "info", ip=ctx.ip, needs=wiz["needs"], plan=wiz["plan"]
        )
        session.data["wizard"] = wiz
        ctx.touch()
    return wiz


def wizard(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    session, user = ctx.require_session()
    entered = _enter(web, ctx)
    if isinstance(entered, Redirect):
        return entered
    wiz = entered
    # The wizard is the user action "register security information": Conditional Access decides
    # on every request, including the one that commits (an IP change mid-flow is caught).
    blocked = web.reg.check_registration_action(ctx, user)
    if blocked is not None:
        return blocked
    action = ""
    if ctx.method == "POST":
        ctx.check_csrf()
        action = ctx.form("action")
        if action not in _ACTIONS:
            action = ""
    if action == "skip":
        return _skip(web, ctx, wiz)
    common = {
        **_skip_info(web, ctx, wiz),
        "legacy": wiz["legacy"],
        "needs": wiz["needs"],
        # a way out of the sign-in, back to the app with access_denied (signin.cancel)
        "cancel_url": web.url("cancel", c=wiz["cid"]),
    }
    if wiz.get("unsatisfiable"):
        return Page("wizard_unsatisfiable", {"missing": wiz["missing"], **common}, 409)
    plan: list[str] = wiz["plan"]
    if wiz["i"] >= len(plan):
        # The method lists (re-confirm, summary) sit behind the MFA gate, like manage mode.
        gate = require_fresh_mfa(web, ctx)
        if gate is not None:
            return gate
    if wiz["reconfirm"] and not plan:
        if action == "looks_good":
            return _finish(web, ctx, wiz)
        return Page("reconfirm", {**_method_list(web, user.id), **common})
    if action == "choose" or ctx.arg("choose") == "1":
        return _choose(web, ctx, wiz, action)
    if wiz["i"] >= len(plan) and plan and _extend_plan(web, ctx, wiz):
        return Redirect(web.url("wizard", c=wiz["cid"]))
    if wiz["i"] >= len(plan):
        if action == "finish":
            return _finish(web, ctx, wiz)
        return Page(
            "wizard_summary", {**_method_list(web, user.id), "added": wiz["added"], **common}
        )
    return _method_step(web, ctx, wiz, action, common)


def _fits(web: WebApp, kind: MethodKind, purpose: str) -> bool:
    """Can ``kind`` stand in for a step planned for ``purpose``? (An MFA step needs an MFA method.)"""
    rules = METHOD_RULES[kind]
    if purpose == "sspr":
        return rules.sspr and kind in web.config.policies.sspr.methods
    return rules.mfa


def _alternatives(web: WebApp, wiz: dict[str, Any]) -> list[str]:
    purposes: list[str] = wiz.get("purpose") or []
    purpose = purposes[wiz["i"]] if wiz["i"] < len(purposes) else "both"
    return [
        k
        for k in wiz["alternatives"]
        if MethodKind(k) in HANDLERS and _fits(web, MethodKind(k), purpose)
    ]


def _extend_plan(web: WebApp, ctx: RequestContext, wiz: dict[str, Any]) -> bool:
    """At the end of the plan, plan again with what is now registered: a different method chosen
    along the way may have left a policy short (e.g. an MFA method that password reset does not
    accept). Returns True when steps were added."""
    session, user = ctx.require_session()
    cont = web.reg.flow.continuation(session, wiz["cid"])
    facts = web.reg.sign_in_facts(ctx, session, user, cont)
    needs = registration_needs(facts, web.config.policies)
    plan = plan_registration(
        needs=needs,
        user_id=user.id,
        groups=user.groups,
        methods=facts.methods,
        policies=web.config.policies,
        registrable=registrable(web),
    )
    if not plan.steps or plan.unsatisfiable:
        return False
    wiz["plan"] += [s.kind.value for s in plan.steps]
    wiz["purpose"] = (wiz.get("purpose") or ["both"] * wiz["i"]) + [s.purpose for s in plan.steps]
    wiz["alternatives"] = [k.value for k in plan.alternatives]
    ctx.touch()
    return True


def _choose(web: WebApp, ctx: RequestContext, wiz: dict[str, Any], action: str) -> Page | Redirect:
    plan: list[str] = wiz["plan"]
    chosen = ctx.form("kind") if action == "choose" else ""
    if wiz["i"] < len(plan) and chosen in _alternatives(web, wiz):
        wiz["alternatives"] = [k for k in wiz["alternatives"] if k != chosen] + [plan[wiz["i"]]]
        plan[wiz["i"]] = chosen
        wiz["step"] = {}
        ctx.touch()
        return Redirect(web.url("wizard", c=wiz["cid"]))
    return Page(
        "wizard_choose",
        {
            "alternatives": [
                {"kind": k, "name": METHOD_NAMES[MethodKind(k)]} for k in _alternatives(web, wiz)
            ],
        },
    )


def _added(web: WebApp, ctx: RequestContext, step: dict[str, Any]) -> dict[str, Any] | None:
    """The method the step registered, described as the list describes it (its name with what
    tells it apart: "Authenticator app (added 6 Dec 2026)"); None if it is gone meanwhile."""
    _, user = ctx.require_session()
    methods = web.reg.info.methods(user.id)
    record = next((m for m in methods if m.id == step.get("method_id")), None)
    return describe_method(record, None, methods) if record is not None else None


def _method_step(
    web: WebApp, ctx: RequestContext, wiz: dict[str, Any], action: str, common: dict[str, Any]
) -> Page | Redirect:
    session, _ = ctx.require_session()
    cid = str(wiz["cid"])
    plan: list[str] = wiz["plan"]
    kind = MethodKind(plan[wiz["i"]])
    step: dict[str, Any] = wiz["step"]
    if step.get("stage") == "added":
        if action == "next":
            wiz["i"] += 1
            wiz["step"] = {}
            ctx.touch()
            return Redirect(web.url("wizard", c=cid))
        page = Page(
            "method_added",
            {"kind": kind.value, "name": METHOD_NAMES[kind], "method": _added(web, ctx, step)},
        )
    else:
        result = HANDLERS[kind](web, ctx, step, action)
        if result is None:
            session = ctx.session or session
            wiz["added"].append(step["method_id"])
            step["stage"] = "added"
            # A verified new MFA method proves possession: this sign-in now has MFA.
            if step.get("amr"):
                new = web.reg.sessions.rotate(session)
                amr = step["amr"] if isinstance(step["amr"], list) else [str(step["amr"])]
                web.reg.flow.mark_mfa(
                    new,
                    [str(a) for a in amr],
                    ctx.now,
                    phishing_resistant=METHOD_RULES[kind].phishing_resistant,
                )
                ctx.session = new
            ctx.touch()
            return Redirect(web.url("wizard", c=cid))
        if isinstance(result, Redirect):
            return result
        page = result
    purposes: list[str] = wiz.get("purpose") or []
    page.data.update(
        {
            "progress": {
                "current": wiz["i"] + 1,
                "total": len(plan),
                "kind": kind.value,
                "name": METHOD_NAMES[kind],
                "purpose": purposes[wiz["i"]] if wiz["i"] < len(purposes) else "both",
            },
            "can_choose_other": bool(_alternatives(web, wiz)),
            **common,
        }
    )
    return page

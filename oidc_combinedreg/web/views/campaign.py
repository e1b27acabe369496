"""The registration campaign's page after sign-in (``/campaign?c=ID``, policy/campaign.py).

"Add the authenticator app": why, and how; "Set it up now" runs the kind's registration steps
(the same handlers as the wizard and manage mode) on this page, then the sign-in continues;
"Not now" snoozes while snoozes are left. Snoozes are counted in the user's stored state, never in
the session, so replaying a request cannot make them endless; the store's write is audited
(``campaign.asked``, ``campaign.snoozed``, ``campaign.added``: the admin's campaign report).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...exceptions import AccessDenied, ChallengeExpired
from ...methods.kinds import METHOD_RULES, MethodKind
from ...policy.campaign import CAMPAIGN_KEY, CampaignState, campaign_state
from ...policy.signin import StepKind
from ...store.base import AuditEvent
from ..render import Page, Redirect
from ..steps import HANDLERS

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["campaign"]


def _write(web: WebApp, user_id: str, change: dict[str, Any], event: AuditEvent) -> CampaignState:
    """Update the campaign's state in the user's stored state, with its audit event."""
    state = web.reg.info.state(user_id)
    now = campaign_state(state.extra)
    new = replace(now, **change)
    extra = {**state.extra, CAMPAIGN_KEY: new.to_extra()}
    web.reg.store.put_user_state(replace(state, extra=extra), events=[event])
    return new


def _asked(web: WebApp, ctx: RequestContext, user_id: str, kind: str, required: bool) -> None:
    before = campaign_state(web.reg.info.state(user_id).extra)
    _write(
        web,
        user_id,
        {
            "asked": before.asked + 1,
            "first_asked": before.first_asked or ctx.now,
            "last_asked": ctx.now,
        },
        web.reg.info.event(
            "campaign.asked", user_id, "info", ip=ctx.ip, kind=kind, required=required
        ),
    )


def _snooze(web: WebApp, ctx: RequestContext, user_id: str, camp: dict[str, Any]) -> Redirect:
    policy = web.config.policies.campaign
    before = campaign_state(web.reg.info.state(user_id).extra)
    # Counted from the store, not from the page: a replayed "Not now" finds none left.
    if camp.get("required") or before.snoozes >= policy.snoozes_allowed:
        raise AccessDenied("no snooze left")
    days = policy.snooze_days
    _write(
        web,
        user_id,
        {"snoozes": before.snoozes + 1, "until": ctx.now + days * 86400},
        web.reg.info.event(
            "campaign.snoozed",
            user_id,
            "info",
            ip=ctx.ip,
            kind=camp["kind"],
            snoozes_used=before.snoozes + 1,
            days=days,
        ),
    )
    camp["done"] = True
    return _done(web, ctx, camp)


def _done(web: WebApp, ctx: RequestContext, camp: dict[str, Any]) -> Redirect:
    """The ask handled in this sign-in: its continuation is taken back in the same session
    write, and the browser goes straight to the /authorize request, whose guard decides again
    (decision 212)."""
    session, _ = ctx.require_session()
    ctx.touch()
    url = web.reg.flow.pop_continuation(session, str(camp["cid"]))
    return Redirect(url if url is not None else web.url("signin", c=camp["cid"]))


def _setup(web: WebApp, ctx: RequestContext, camp: dict[str, Any], action: str) -> Page | Redirect:
    """The kind's registration steps, on this page; back to the sign-in once added."""
    session, user = ctx.require_session()
    # As in the wizard: a user with an MFA method proves it before touching security info.
    if web.reg.info.mfa_methods(user.id) and session.data.get("mfa_at") is None:
        return Redirect(web.url("mfa", c=camp["cid"]))
    # The user action "register security information" (Conditional Access, every request).
    blocked = web.reg.check_registration_action(ctx, user)
    if blocked is not None:
        return blocked
    kind = MethodKind(camp["kind"])
    result = HANDLERS[kind](web, ctx, camp.setdefault("step", {}), action)
    if result is not None:
        if isinstance(result, Page):
            result.data["progress"] = None
            result.data["mode"] = "campaign"
        return result
    amr = camp["step"].get("amr")
    _write(
        web,
        user.id,
        {"added": ctx.now},
        web.reg.info.event("campaign.added", user.id, "success", ip=ctx.ip, kind=kind.value),
    )
    session = ctx.session or session
    session.data.pop(CAMPAIGN_KEY, None)
    if amr:
        # As in the wizard (decisions.md #2): verifying a new MFA method proves possession.
        new = web.reg.sessions.rotate(session)
        web.reg.flow.mark_mfa(
            new,
            [str(a) for a in (amr if isinstance(amr, list) else [amr])],
            ctx.now,
            phishing_resistant=METHOD_RULES[kind].phishing_resistant,
        )
        ctx.session = new
    return _done(web, ctx, camp)


def campaign(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    session, user = ctx.require_session()
    cid = ctx.cid
    cont = web.reg.flow.continuation(session, cid)
    if cid is None or cont is None:
        raise ChallengeExpired("unknown continuation")
    camp = session.data.get(CAMPAIGN_KEY)
    if not isinstance(camp, dict) or camp.get("cid") != cid or camp.get("done"):
        # No forced browsing: the page shows only when this sign-in's decision asks for it.
        facts = web.reg.sign_in_facts(ctx, session, user, cont)
        step = web.reg.flow.next_step(facts)
        if step.kind is not StepKind.CAMPAIGN or facts.campaign_kind is None:
            return Redirect(web.url("signin", c=cid))
        required = "campaign_required" in step.reasons
        camp = {"cid": cid, "kind": facts.campaign_kind.value, "required": required}
        _asked(web, ctx, user.id, camp["kind"], required)
        session.data[CAMPAIGN_KEY] = camp
        ctx.touch()
    action = ""
    if ctx.method == "POST":
        ctx.check_csrf()
        action = ctx.form("action")
    if action == "snooze":
        return _snooze(web, ctx, user.id, camp)
    if action == "start" or camp.get("started"):
        if not camp.get("started"):
            camp["started"] = True
            ctx.touch()
        return _setup(web, ctx, camp, "" if action == "start" else action)
    policy = web.config.policies.campaign
    state = campaign_state(web.reg.info.state(user.id).extra)
    left = 0 if camp["required"] else max(0, policy.snoozes_allowed - state.snoozes)
    push = web.config.push
    return Page(
        "campaign",
        {
            "kind": camp["kind"],
            "required": bool(camp["required"]),
            "snoozes_left": left,
            "snooze_days": policy.snooze_days,
            "app_name": (
                push.app_name or f"{web.config.general.organization} Authenticator".strip()
                if camp["kind"] == MethodKind.PUSH.value
                else None
            ),
            "cancel_url": web.url("cancel", c=cid),
        },
    )

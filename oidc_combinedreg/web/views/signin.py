"""The sign-in steps after the password: the dispatcher that decides, the MFA challenge, and
"Cancel sign-in" (back to the relying party with ``access_denied``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...authorization import ACCESS_DENIED
from ...exceptions import (
    AccessDenied,
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    VerificationFailed,
)
from ...methods.kinds import METHOD_RULES, MethodKind
from ...policy.reset import PASSWORD_RESET_REQUIRED
from ...policy.signin import Step, StepKind
from ...service.base import CodeVerifier
from ...store.base import MethodRecord
from ..flow import names_the_client, request_params
from ..i18n import N_
from ..render import HostAnswer, Page, Redirect
from ..session import Session
from .common import describe_method

if TYPE_CHECKING:
    from ..app import WebApp
    from ..context import RequestContext

__all__ = ["cancel", "dispatch", "mfa", "require_fresh_mfa", "step_location"]


def step_url(web: WebApp, step: Step, cid: str) -> str | None:
    """The page ``step`` of the sign-in ``cid`` needs: the one place that chooses it, for the
    /authorize guard (which sends the browser there at once) and for ``/signin?c=ID``. None
    for a cleared sign-in and for a block without a page of its own (``/signin?c=ID`` shows it)."""
    if step.kind is StepKind.MFA:
        # The RP asked for phishing resistance: the page offers only such methods. (Only a
        # narrowing: a code from another method leaves the sign-in at this step.)
        only = "phr" if "phishing_resistant" in step.reasons else None
        return web.url("mfa", c=cid, only=only)
    if step.kind is StepKind.REGISTER:
        return web.url("wizard", c=cid)
    if step.kind is StepKind.CAMPAIGN:
        return web.url("campaign", c=cid)
    if step.kind is StepKind.BLOCKED and step.reasons[:1] == (PASSWORD_RESET_REQUIRED,):
        return web.url("reset")
    return None


def step_location(web: WebApp, step: Step, cid: str) -> str:
    """Where the guard sends a browser whose sign-in ``cid`` needs ``step`` (a page, not a
    cleared request): the step's page, or ``/signin?c=ID`` for a block without a page of its own
    (decision 212). The /authorize guard and the password's answer (decision 226) both ask here."""
    return step_url(web, step, cid) or web.url("signin", c=cid)


def dispatch(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/signin?c=ID``: send the browser to the next step of this sign-in, or to /authorize.
    (The guard sends it to the step's page itself; this page serves the cookie check's return,
    the blocked page, the steps that come back here, and bookmarks.)"""
    session, user = ctx.require_session()
    cont = web.reg.flow.continuation(session, ctx.cid)
    if cont is None or ctx.cid is None:
        raise ChallengeExpired("unknown continuation")
    step = web.reg.decide(ctx, session, user, cont)
    if step.kind is StepKind.DONE:
        url = web.reg.flow.pop_continuation(session, ctx.cid)
        ctx.touch()
        assert url is not None
        return Redirect(url)
    page = step_url(web, step, ctx.cid)
    if page is not None:
        return Redirect(page)
    data = {
        "reason": step.reasons[0] if step.reasons else "blocked",
        "correlation_id": session.data.get("ca_correlation"),
        # the way back to the app, which hears access_denied (not left waiting)
        "cancel_url": web.url("cancel", c=ctx.cid),
    }
    return Page("blocked", data, 403)


def cancel(web: WebApp, ctx: RequestContext) -> HostAnswer | Redirect:
    """``POST /signin/cancel?c=ID`` (the MFA step's and the wizard's "Cancel sign-in"): the
    pending sign-in ends (this browser's middleware session, every continuation in it), and the
    relying party of the request ``ID`` gets ``access_denied`` with its ``state`` through the
    host's validated error response (RFC 6749 4.1.2.1). Signing in again, as anyone, starts at
    the host's login page."""
    session, user = ctx.require_session()
    if ctx.method != "POST":
        return Redirect(web.url("signin", c=ctx.cid))
    ctx.check_csrf()
    cont = web.reg.flow.continuation(session, ctx.cid)
    if cont is None:
        raise ChallengeExpired("unknown continuation")
    params = request_params(urlsplit(str(cont["url"])).query)
    web.reg.sessions.delete(session)
    web.reg.info.audit(
        "signin.cancelled", user.id, "info", ip=ctx.ip, client_id=str(cont.get("client_id", ""))
    )
    ctx.session = None
    ctx.cookies.append(web.reg.sessions.clear_cookie_header())
    text = "The user cancelled the sign-in."
    return HostAnswer(
        web.reg.authorization.error_response(ctx.environ, params, ACCESS_DENIED, text)
    )


def _ordered_mfa_methods(
    web: WebApp, user_id: str, *, gate: bool = False, phr: bool = False
) -> list[MethodRecord]:
    """Default (or, with system-preferred MFA, the most secure) first; the manage pages' gate
    always offers the user's own default first. ``phr``: phishing-resistant methods only."""
    methods = web.reg.info.mfa_methods(user_id)
    usable = [
        m
        for m in methods
        if m.kind in web.reg.info.verifiers and (not phr or METHOD_RULES[m.kind].phishing_resistant)
    ]
    if web.config.policies.system_preferred_mfa and not gate:
        return sorted(usable, key=lambda m: (METHOD_RULES[m.kind].rank, m.created_at))
    default = web.reg.info.default_method(user_id, methods)
    return sorted(usable, key=lambda m: (default is None or m.id != default.id, m.created_at))


#: where the MFA gate may send the user back to (by name: never a URL from the request)
_BACK = {"admin": "admin_dashboard", "activity": "activity"}


def _after_mfa(web: WebApp, ctx: RequestContext, resume: str | None = None) -> Redirect:
    """``resume``: the /authorize request whose continuation the MFA took back (decision 212)."""
    if resume is not None:
        return Redirect(resume)
    if ctx.cid is not None:
        return Redirect(web.url("signin", c=ctx.cid))
    back = _BACK.get(ctx.arg("back") or "")
    return Redirect(web.url(back or "manage"))


def _error_text(exc: Exception) -> str:
    if isinstance(exc, CodeReused):
        return N_("That code was already used. Wait for the next code in your app.")
    if isinstance(exc, InvalidInput):
        return exc.message if exc.field != "code" else N_("Enter the 6-digit code from your app.")
    if isinstance(exc, ChallengeExpired):
        return N_("This request expired. Start again.")
    return N_("That didn't work. Check and try again.")


#: what became of a push request the device did not approve: the page says it instead of the
#: number, stops polling and offers a new request (issue 23.1)
_PUSH_RESULTS = {
    "denied": N_("The request was denied in your authenticator app."),
    "wrong_number": N_(
        "The number chosen in your authenticator app didn't match the one shown here, so the"
        " request was refused."
    ),
    "reported": N_(
        "The request was reported in your authenticator app as not yours, so it was refused."
    ),
    "expired": N_("This request expired before it was approved."),
}


def _push_result(chosen: MethodRecord, exc: Exception, code: str) -> str | None:
    """``denied``/``wrong_number``/``reported``/``expired`` when a push request is over (the
    device refused it, or it is gone); None while it waits or for the app's offline code."""
    if chosen.kind != MethodKind.PUSH or code:
        return None
    if isinstance(exc, VerificationFailed):
        # "session": the answer belongs to another browser session; this one's request is gone.
        return exc.reason if exc.reason in _PUSH_RESULTS else "expired"
    return "expired" if isinstance(exc, ChallengeExpired) else None


def _upgrade(
    web: WebApp,
    session: Session,
    amr: Sequence[str],
    now: float,
    kind: MethodKind,
    leave: str | None,
) -> str | None:
    """The MFA step's change of the sign-in's session once its method proved ``amr``; with
    ``leave``, the continuation the sign-in goes back to is taken back in the same change (the
    guard at its /authorize decides again: decision 212). Returns its URL."""
    session.data.pop("mfa_state", None)
    web.reg.flow.mark_mfa(
        session, list(amr), now, phishing_resistant=METHOD_RULES[kind].phishing_resistant
    )
    if leave is None:
        return None
    # A dict of its own: a planned session shares its nested values with the one saved.
    session.data["conts"] = dict(session.data.get("conts") or {})
    return web.reg.flow.pop_continuation(session, leave)


@names_the_client  # its MFA events name the app being signed in to (decision 187)
def mfa(web: WebApp, ctx: RequestContext) -> Page | Redirect:
    """``/mfa``: "Verify your identity" with the default method first and "Sign in another way"."""
    session, user = ctx.require_session()
    if ctx.cid is not None and web.reg.flow.continuation(session, ctx.cid) is None:
        raise ChallengeExpired("unknown continuation")
    gate = ctx.cid is None
    phr = ctx.arg("only") == "phr"
    # A POST names its method: one read, not the ordered list, which only a page needs.
    chosen = (
        web.reg.info.mfa_method(user.id, ctx.form("method_id")) if ctx.method == "POST" else None
    )
    methods: list[MethodRecord] | None = None
    if chosen is None:
        methods = _ordered_mfa_methods(web, user.id, gate=gate, phr=phr)
        if not methods:
            return _after_mfa(web, ctx)
        wanted = ctx.form("method_id") if ctx.method == "POST" else (ctx.arg("method") or "")
        chosen = next((m for m in methods if m.id == wanted), methods[0])
    verifier = web.reg.info.verifiers[chosen.kind]
    # Per-method state between start and verify, server side; a new method choice starts afresh.
    state: dict[str, Any] = session.data.get("mfa_state") or {}
    if state.get("method_id") != chosen.id:
        state = {"method_id": chosen.id}

    def page(status: int = 200, **data: Any) -> Page:
        others = (
            methods
            if methods is not None
            else _ordered_mfa_methods(web, user.id, gate=gate, phr=phr)
        )
        return Page("mfa", {
            # where the gate returns afterwards (a name from _BACK, kept on "Sign in another way")
            "back": ctx.arg("back") if ctx.arg("back") in _BACK else None,
            "method": describe_method(chosen, None, others),
            "others": [describe_method(m, None, others) for m in others if m.id != chosen.id],
            "needs_start": verifier.needs_start,
            "started": bool(state.get("started")),
            "challenge": state.get("page", {}),
            "push_result": None,
            "errors": {},
            "values": {},
            # inside a sign-in (not the manage pages' gate): a way out, back to the app
            "cancel_url": web.url("cancel", c=ctx.cid) if ctx.cid else None,
            **data,
        }, status)  # fmt: skip

    if ctx.method != "POST":
        return page()
    ctx.check_csrf()
    if ctx.form("action") == "start" and verifier.needs_start:
        # The method's own choice at start: text or call for a phone.
        state["via"] = ctx.form("via")[:16]
        # The app being signed in to, for the push prompt ("Sign in to <app>?").
        cont = web.reg.flow.continuation(session, ctx.cid)
        state["app"] = str(cont.get("client_id") or "") if cont else "My security info"
        challenge = verifier.start(user, chosen, state, ip=ctx.ip)
        state.update({"started": True, "page": challenge})
        session.data["mfa_state"] = state
        ctx.touch()
        return page()
    # Inside a sign-in, the MFA takes its continuation back and the browser goes straight to
    # the /authorize request; not while the wizard or the campaign keeps its progress under it
    # (an MFA they asked for: back to their page through /signin, decision 212).
    leave = ctx.cid if ctx.cid and not web.reg.flow.in_progress(session, ctx.cid) else None
    resume: str | None = None
    new = web.reg.sessions.rotate(session)  # its random id drawn before the transaction
    try:
        # The check, its audit event and the session it upgrades are one write transaction
        # where the store has them (SQLite: one commit, one turn of the writer lock).
        with web.reg.store.transaction():
            if web.reg.sessions.plans and isinstance(verifier, CodeVerifier):
                # A typed code proves "otp": the upgraded session is known before the check,
                # so a store that records the code's success in one call saves it there too.
                ahead = Session(new.sid, dict(new.data), is_new=True)
                ahead.replaced_sid, ahead.stored = new.replaced_sid, new.stored
                _upgrade(web, ahead, ("otp",), ctx.now, chosen.kind, leave)
                web.reg.sessions.plan(ahead)
            amr = verifier.verify(user, chosen, ctx.fields(), state, ip=ctx.ip)
            resume = _upgrade(web, new, amr, ctx.now, chosen.kind, leave)
            if not web.reg.sessions.save(new):
                raise AccessDenied("the session has ended")  # signed out meanwhile
        ctx.session = new
        ctx.cookies.append(web.reg.sessions.set_cookie_header(new))
    except (InvalidInput, VerificationFailed, CodeReused, ChallengeExpired) as exc:
        code = ctx.form("code")
        over = _push_result(chosen, exc, code)
        if over is not None:
            # The request is over: forget its number, so the page stops polling (push.js).
            state.pop("started", None)
            state.pop("page", None)
        errors = {"push": _PUSH_RESULTS[over]} if over else {"code": _error_text(exc)}
        session.data["mfa_state"] = state
        ctx.touch()
        return page(
            400,
            errors=errors,
            values={"code": code if len(code) <= 20 else ""},
            push_result=over,
        )
    return _after_mfa(web, ctx, resume)


def require_fresh_mfa(
    web: WebApp, ctx: RequestContext, *, back: str | None = None
) -> Redirect | None:
    """The MFA gate of the security-info pages: a redirect to MFA when it is not fresh.

    ``back`` names the page to return to afterwards (a key of ``_BACK``; default manage mode)."""
    session, user = ctx.require_session()
    if web.reg.info.mfa_methods(user.id):
        mfa_at = session.data.get("mfa_at")
        if not isinstance(mfa_at, int) or ctx.now - mfa_at > web.config.web.mfa_freshness:
            # Inside a sign-in (the wizard's summary) the MFA step returns to it afterwards.
            if ctx.cid:
                return Redirect(web.url("mfa", c=ctx.cid))
            return Redirect(web.url("mfa", back=back) if back in _BACK else web.url("mfa"))
        return None
    pwd_at = session.data.get("pwd_at")
    if not isinstance(pwd_at, int) or ctx.now - pwd_at > web.config.web.password_freshness:
        raise AccessDenied("no signed-in session")
    return None

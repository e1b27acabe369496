"""The /authorize guard: what the middleware decides for the host's authorization endpoint
before the host sees the request (OIDC Core 3.1.2.1): the session and user, the sign-in policy's
next step, a cleared request's :class:`SignInResult` in ``environ[RESULT_KEY]``, an error the
relying party hears (``prompt=none``), or a redirect to the middleware's page the step needs;
the host's answer to an uncleared request is held back and refused if it carries a code
(backstop.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException

from ..authorization import INVALID_REQUEST, LOGIN_REQUIRED, rp_error
from ..exceptions import StoreUnavailable
from ..policy.signin import Step, StepKind
from ..store import request_reads
from ..wiring import decided, no_user
from . import backstop, cookie_check
from .authorize_request import authorization_query
from .flow import request_params
from .views.signin import step_location

if TYPE_CHECKING:
    from collections.abc import Mapping

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..middleware import CombinedRegistration

__all__ = ["RESULT_KEY", "answer_rp", "guard", "host_without_result"]

#: environ key holding the :class:`SignInResult` of a cleared /authorize request
RESULT_KEY = "combinedreg.result"
_COOKIES_KEY = "combinedreg.set_cookie"


def guard(
    reg: CombinedRegistration, environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    environ.pop(RESULT_KEY, None)
    try:
        query = authorization_query(environ)
    except HTTPException as exc:  # a POSTed body too large to decide on, or cut off
        return reg.web.error_response(environ, start_response, exc)
    params = request_params(query)
    # The session's load may bring its user's methods and state along (store/request_reads.py),
    # which the decision reads next: kept for this request only.
    reads = request_reads.open_scope()
    try:
        effective = reg.authorization.effective_params(environ, params)  # effective parameters
        if effective is None:  # the host refuses this request itself
            decided(environ, "the host's effective_params() refused the request")
            return host_without_result(reg, environ, start_response)
        return _guard_inner(reg, environ, start_response, query, params, effective)
    except StoreUnavailable:
        # Fail closed: no store, no authorization code.
        return reg.web.error_response(environ, start_response, StoreUnavailable())
    finally:
        request_reads.close_scope(reads)


def _guard_inner(
    reg: CombinedRegistration,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    query: str,
    params: Mapping[str, str],
    effective: Mapping[str, str],
) -> Iterable[bytes]:
    """``query``/``params``: the request as sent (a POST's body too); ``effective``: what it
    means (the host's ``effective_params``), which the decision reads."""
    prompts = effective.get("prompt", "").split()
    silent = "none" in prompts  # OIDC Core 3.1.2.1: no page, whatever happens
    if silent and len(prompts) > 1:
        text = "prompt=none cannot be combined with another value."
        decided(environ, "prompt=none with another prompt value: invalid_request to the RP")
        return answer_rp(reg, environ, start_response, params, INVALID_REQUEST, text)
    session = reg.sessions.load(environ)
    if session is None and not silent:
        # A browser without our cookie: set one and check it comes back (web/cookie_check.py).
        probe = cookie_check.probe(reg, environ)
        if probe is not None:
            decided(environ, "no middleware cookie: the cookie check first")
            start_response(*probe)
            return [b"Checking that cookies work..."]
    user = reg.directory.get_user(session.user_id) if session and session.user_id else None
    if session is None or user is None or not user.enabled:
        no_user(environ, session.user_id if session else None, user)
        if silent:  # nobody signed in here (or a cookie that did not come back)
            decided(environ, "prompt=none without a signed-in user: login_required to the RP")
            text = "The user is not signed in."
            return answer_rp(reg, environ, start_response, params, LOGIN_REQUIRED, text)
        return host_without_result(reg, environ, start_response)
    ctx = reg.web.context_for(environ)
    ctx.session, ctx.user = session, user
    path = environ.get("PATH_INFO", "")
    # How many continuations the session had: a cleared request adds its own and takes it back,
    # so the same count afterwards means the data is what the store holds (nothing evicted).
    conts = session.data.get("conts")
    kept = len(conts) if isinstance(conts, dict) else -1
    cid = reg.flow.add_continuation(session, path, query, ctx.now, effective)
    cont = reg.flow.continuation(session, cid)
    step = reg.decide(ctx, session, user, cont)
    if silent and step.kind is StepKind.CAMPAIGN and "campaign_nudge" in step.reasons:
        # A campaign ask that may be snoozed is an offer, not a requirement: prompt=none
        # gets its code, and the ask waits for an interactive sign-in (decision 162).
        step = Step(kind=StepKind.DONE)
    if step.kind is StepKind.DONE:
        reg.flow.pop_continuation(session, cid)
        changed = kept != len(session.data["conts"])
        if not reg.sessions.save_seen(session, changed=changed):
            # Ended (signed out everywhere, revoked) since it was loaded: no code for it. (An
            # unchanged session saved moments ago is not written: its load above was the check.)
            decided(environ, "the session ended while deciding")
            return host_without_result(reg, environ, start_response)
        environ[RESULT_KEY] = result = reg.flow.result(session, cont)
        decided(environ, f"{user.id!r} cleared: to the host with amr {result and result.amr}")
        return host_without_result(reg, environ, start_response, cleared=True)
    error = rp_error(step, silent=silent)
    if error is not None:  # the RP hears it; the request does not wait for a page
        reg.flow.pop_continuation(session, cid)
        if not reg.sessions.save_seen(session, changed=True):
            decided(environ, "the session ended while deciding")
            return host_without_result(reg, environ, start_response)
        reg.info.audit(
            "signin.answered", user.id, "info", ip=ctx.ip, error=error[0], step=str(step.kind)
        )
        decided(environ, f"{user.id!r}: {step.kind} needed: {error[0]} to the RP")
        return answer_rp(reg, environ, start_response, params, *error)
    if not reg.sessions.save_seen(session, changed=True):
        decided(environ, "the session ended while deciding")
        return host_without_result(reg, environ, start_response)
    # Straight to the page the step needs (the URL /signin?c= would choose: one function).
    location = step_location(reg.web, step, cid)
    page = location.split("?", 1)[0]
    decided(environ, f"{user.id!r}: {step.kind} needed: to the middleware's page {page}")
    headers = [
        ("Location", location),
        ("Cache-Control", "no-store"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    start_response("303 See Other", headers)
    return [b"Continue: " + location.encode()]


def answer_rp(
    reg: CombinedRegistration,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    params: Mapping[str, str],
    error: str,
    description: str,
) -> Iterable[bytes]:
    """The host's error response to the RP (its validated redirect URI, with ``state``)."""
    app = reg.authorization.error_response(environ, params, error, description)
    return host_without_result(reg, environ, start_response, app=app)


def host_without_result(
    reg: CombinedRegistration,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    *,
    cleared: bool = False,
    app: WSGIApplication | None = None,
) -> Iterable[bytes]:
    """Pass /authorize to the host (or ``app``, its error answer); unless cleared, hold its
    answer back and refuse it if it carries a code in any response mode (backstop.py)."""

    def add_cookies(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        cookies = environ.get(_COOKIES_KEY)
        return [*headers, *reg.web.cookie_headers(environ, cookies)] if cookies else headers

    if not cleared:
        return backstop.checked_response(app or reg.app, environ, start_response, add_cookies)

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, add_cookies(headers), exc_info)

    return (app or reg.app)(environ, start)

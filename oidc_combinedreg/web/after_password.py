"""Straight to the sign-in's next page after the password (decision 226).

A host's login view answers a correct password (after :meth:`password_verified`, or a valid
Temporary Access Pass) with a redirect back to the authorization request the user came from. The
browser would follow it, and the /authorize guard would answer at once with a redirect to the
page the sign-in needs (MFA, the wizard, a campaign, a block): one request that only says "go
there". Here the middleware makes that decision on the login's own response instead, with the
session it has just started, and points the host's redirect at that page: the same page, the same
continuation, one request sooner for every sign-in that needs a step.

Only what the guard itself would have answered with a page is moved forward. Everything else
leaves the host's redirect as it is, and the guard decides on the next request exactly as before:
a cleared sign-in (the host issues the code there), an error the relying party hears
(``prompt=none``, an unmet essential ``acr``), a request the host refuses, a store outage, a
redirect that is not a plain 302/303 to this origin's authorization endpoint. What Conditional
Access audits while deciding is held and written with the session, so a decision left to the
guard is not audited twice.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..authorization import rp_error
from ..exceptions import StoreUnavailable
from ..policy.signin import StepKind
from ..wiring import decided
from .flow import request_params
from .views.signin import step_location

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..middleware import CombinedRegistration
    from .session import Session

__all__ = ["HELD_AUDITS_KEY", "SIGNED_IN_KEY", "redirect_to_step"]

#: environ key: the session :meth:`password_verified` (or a Temporary Access Pass) started
SIGNED_IN_KEY = "combinedreg.signed_in"
#: environ key: while set (a list), Conditional Access's audit events are held in it
HELD_AUDITS_KEY = "combinedreg.held_audits"

#: a URL a browser sends exactly as written: printable ASCII of a URL, no space, no fragment
#: (anything else it would encode first, and the continuation must be what /authorize receives)
_PLAIN_URL = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*")


def redirect_to_step(
    reg: CombinedRegistration,
    environ: WSGIEnvironment,
    status: str,
    headers: list[tuple[str, str]],
) -> list[tuple[str, str]]:
    """The host's response headers, its ``Location`` pointed at the sign-in's next page when
    the guard would send the browser there from that location; otherwise unchanged."""
    session = environ.pop(SIGNED_IN_KEY, None)  # once: a later start_response is an error's
    if session is None or status[:4] not in ("302 ", "303 "):  # a 307 would re-POST the form
        return headers
    index = next((i for i, (name, _) in enumerate(headers) if name.lower() == "location"), -1)
    if index < 0:
        return headers
    value = headers[index][1]
    query = _authorization_query(reg, environ, value)
    if query is None:
        return headers
    try:
        page = _step_page(reg, environ, session, query)
    except StoreUnavailable:
        return headers  # the guard meets the outage on the next request and shows its page
    if page is None:
        return headers
    return [*headers[:index], ("Location", page), *headers[index + 1 :]]


def _authorization_query(
    reg: CombinedRegistration, environ: WSGIEnvironment, location: str
) -> str | None:
    """The query of ``location`` when it is this origin's authorization endpoint (a path, or
    an absolute URL of the request's own host) written as a browser sends it; else None."""
    if not _PLAIN_URL.fullmatch(location):
        return None
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:  # absolute (or scheme-relative): this request's host only
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
        if parts.scheme.lower() not in ("http", "https") or parts.netloc.lower() != host.lower():
            return None
    if parts.path != environ.get("SCRIPT_NAME", "") + reg.config.web.authorize_path:
        return None
    return parts.query


def _step_page(
    reg: CombinedRegistration, environ: WSGIEnvironment, session: Session, query: str
) -> str | None:
    """The guard's decision for ``query`` with the session just started: the page's URL when
    the guard would redirect there (the continuation saved), None when it would not."""
    params = request_params(query)
    effective = reg.authorization.effective_params(environ, params)
    if effective is None or "none" in effective.get("prompt", "").split():
        return None  # refused, or prompt=none: answered to the relying party by the guard
    user = reg.directory.get_user(session.user_id) if session.user_id else None
    if user is None or not user.enabled:
        return None
    ctx = reg.web.context_for(environ)
    ctx.session, ctx.user = session, user
    cid = reg.flow.add_continuation(
        session, reg.config.web.authorize_path, query, ctx.now, effective
    )
    held: list[dict[str, Any]] = []
    environ[HELD_AUDITS_KEY] = held
    try:
        step = reg.decide(ctx, session, user, reg.flow.continuation(session, cid))
    finally:
        del environ[HELD_AUDITS_KEY]
    if step.kind is StepKind.DONE or rp_error(step, silent=False) is not None:
        return None  # the guard clears it (the host issues the code) or answers the RP
    if held:  # the evaluation's events with the session: one transaction
        with reg.store.transaction():
            saved = reg.sessions.save_seen(session, changed=True)
            for event in held if saved else ():
                reg.info.audit(**event)
    else:  # a lone write, as the guard's (SQLite: its own transaction, decision 201)
        saved = reg.sessions.save_seen(session, changed=True)
    if not saved:
        return None
    location = step_location(reg.web, step, cid)
    page = location.split("?", 1)[0]
    why = f"{user.id!r}: {step.kind} needed: to the middleware's page {page}, from the login"
    decided(environ, why)
    return location

"""The cookie check: a clear page when the browser does not send the middleware's cookie back.

Without it, a browser that blocks cookies loops between the host's login form and /authorize, or
lands on a generic "you're not signed in" page. The check works in two halves:

* **the probe** (in the authorization guard): a browser navigating to /authorize without the
  middleware's cookie gets an anonymous session, its cookie, and a redirect to ``/signin?c=ID``;
* **the signal** (on every middleware page): a request with a continuation ``c`` but *no session
  cookie at all* means the cookie set one redirect earlier was not kept -> the cookies page. An
  expired session is different: its cookie is still sent, so it keeps its own "signed out" page.

With cookies working, ``/signin?c=ID`` finds the anonymous session and sends the browser straight
back to the stored /authorize URL (one extra redirect, once per browser session). Only browser page
loads are probed (``Sec-Fetch-Mode: navigate``, or an ``Accept`` starting with ``text/html`` when
there are no Sec-Fetch headers), so API clients and RP libraries (``Accept: */*``) are not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .headers import with_https_headers
from .render import Page, Redirect
from .session import request_cookies

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..middleware import CombinedRegistration
    from .app import WebApp
    from .context import RequestContext

__all__ = ["explain", "probe", "resume", "sends_session_cookie"]

#: session data key marking the anonymous session of a probe
PROBE_KEY = "probe"
#: the probe session's key for the client of the /authorize request it sent back to
CLIENT_KEY = "client_id"


def sends_session_cookie(cookie_name: str, environ: WSGIEnvironment) -> bool:
    """Does the request carry the middleware's cookie at all (valid, expired or garbled)?"""
    return cookie_name in request_cookies(environ)


def _is_navigation(environ: WSGIEnvironment) -> bool:
    """A browser loading a page: ``Sec-Fetch-Mode: navigate``, or (browsers that send no
    Sec-Fetch headers, e.g. on plain http) an ``Accept`` that asks for HTML first."""
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    mode = environ.get("HTTP_SEC_FETCH_MODE")
    if mode is not None:
        return bool(
            mode == "navigate" and environ.get("HTTP_SEC_FETCH_DEST", "document") == "document"
        )
    return str(environ.get("HTTP_ACCEPT", "")).startswith("text/html")


def probe(
    reg: CombinedRegistration, environ: WSGIEnvironment
) -> tuple[str, list[tuple[str, str]]] | None:
    """In the guard, for a request without a session: ``(status, headers)`` of the probe
    redirect, or None to let the host answer as usual."""
    if sends_session_cookie(reg.sessions.cookie_name, environ) or not _is_navigation(environ):
        return None
    session = reg.sessions.create({PROBE_KEY: True, "conts": {}})
    query = environ.get("QUERY_STRING", "")
    cid = reg.flow.add_continuation(session, environ.get("PATH_INFO", ""), query, reg.clock.now())
    reg.sessions.save(session)
    headers = [
        ("Location", reg.web.url("signin", c=cid)),
        ("Set-Cookie", reg.sessions.set_cookie_header(session)),
        ("Cache-Control", "no-store"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    if reg.web.is_https(environ):  # the first cookie of a sign-in: Secure over https too
        headers = with_https_headers(headers, reg.config.web)
    return "303 See Other", headers


def resume(web: WebApp, ctx: RequestContext) -> Redirect | None:
    """In ``/signin?c=ID``: the cookie came back -> continue to the stored /authorize URL."""
    if ctx.session is not None or ctx.cid is None:
        return None
    session = web.reg.sessions.load(ctx.environ)
    if session is None or not session.data.get(PROBE_KEY) or session.user_id is not None:
        return None
    client = web.reg.flow.client_of(session, ctx.cid)
    url = web.reg.flow.pop_continuation(session, ctx.cid)
    if url is None:
        return None
    if client:  # the app being signed in to, for the password's audit event (decision 187)
        session.data[CLIENT_KEY] = client
    if not web.reg.sessions.save(session):
        return None  # ended meanwhile
    return Redirect(url)


def explain(web: WebApp, ctx: RequestContext, result: Page | Any) -> Page | Any:
    """Turn "signed out" into the cookies page when the browser dropped the cookie."""
    if (
        isinstance(result, Page)
        and result.data.get("error") == "signed_out"
        and ctx.cid is not None
        and not sends_session_cookie(web.reg.sessions.cookie_name, ctx.environ)
    ):
        return Page("cookies_blocked", {"error": "cookies_blocked"}, 401)
    return result

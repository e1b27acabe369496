"""Signed out on a security-info page: to the host's login page (``[web].login_url``) with ``next``.

Without it, ``/security-info/`` opened in a fresh browser is a dead end ("You're not signed in").
With it, a GET of a manage-mode page (HTML) is a 303 to the login page with ``next`` = this page,
so that the host's login comes back here; every other signed-out answer (a POST, the JSON twin, a
sign-in step whose continuation died with its session) keeps its 401 page, which then links to
the login page (``login_url`` in the JSON twin).

``next`` is only ever built here, from this request's own path and query, so it is a relative
path on this origin ("/security-info/add/totp"), never a URL taken from a parameter: the link
cannot become an open redirect. The host still checks ``next`` as it does for its own pages
(Flask-Login's ``next``: accept a path starting with one "/", nothing else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .render import Page, Redirect

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .app import WebApp
    from .context import RequestContext

__all__ = ["MANAGE_ENDPOINTS", "login_location", "same_origin_next", "signed_out"]

#: the pages of manage mode: worth coming back to after signing in (a sign-in step is not:
#: its continuation lived in the session that ended)
MANAGE_ENDPOINTS = frozenset(
    {"manage", "add", "change", "delete", "delete_reported", "rename", "set_default"}
)


def same_origin_next(environ: WSGIEnvironment) -> str | None:
    """This request's path and query as a relative URL on this origin, or None if it is not one."""
    # WSGI (PEP 3333) carries the path's bytes as latin-1 characters: quote those bytes, or a
    # non-ASCII path ("/sécurité") would come back encoded twice.
    raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    path = quote(raw.encode("latin-1", "replace"), "/")
    query = str(environ.get("QUERY_STRING", ""))
    target = f"{path}?{query}" if query else path
    # A path that a browser would read as another origin ("//evil", "/\\evil") is never one.
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if not target.isprintable() or any(c in target for c in " \\"):
        return None
    return target


def login_location(login_url: str, next_url: str | None) -> str:
    """``login_url`` with ``next`` added to its query (after any query it has already)."""
    if not next_url:
        return login_url
    return login_url + ("&" if "?" in login_url else "?") + urlencode({"next": next_url})


def signed_out(web: WebApp, ctx: RequestContext, endpoint: str, result: Page | Any) -> Any:
    """The "You're not signed in" page turned into the way to the host's login page."""
    login_url = web.config.web.login_url
    if not login_url or not isinstance(result, Page) or result.data.get("error") != "signed_out":
        return result
    if endpoint not in MANAGE_ENDPOINTS:
        return Page(
            result.name, {**result.data, "login_url": login_url}, result.status, result.headers
        )
    get = ctx.environ.get("REQUEST_METHOD") in ("GET", "HEAD")
    here = same_origin_next(ctx.environ) if get else None
    if get and not ctx.json and here is not None:
        return Redirect(login_location(login_url, here))
    # A form posted into an ended session: come back to the overview, not to a POST-only URL.
    back = here or web.prefix + "/"
    data = {**result.data, "login_url": login_location(login_url, back)}
    return Page(result.name, data, result.status, result.headers)

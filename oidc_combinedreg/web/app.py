"""The middleware's own pages: routing, context, error mapping and responses. Views stay thin."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response

from ..directory import RequestScopedDirectory
from ..exceptions import AccessDenied, StoreUnavailable
from ..store import request_reads
from . import backstop, cookie_check, device_api, login_link
from .admin_api import MAX_BODY as ADMIN_MAX_BODY
from .admin_api import AdminApi
from .branding import brand_css
from .context import MAX_BODY, RequestContext
from .errors import error_page
from .headers import (
    PAGE_HEADERS_APPLIED,
    page_headers,
    request_is_https,
    secure_cookie,
    with_https_headers,
)
from .i18n import LANG_COOKIE, Catalogs, end_catalogs, use_catalogs
from .oversized import Lingering, declared_too_large
from .render import HostAnswer, Page, Redirect, Renderer, wants_json
from .views import (
    activity,
    admin_dashboard,
    campaign,
    manage,
    names,
    not_me,
    pwa,
    reset,
    signin,
    wizard,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..middleware import CombinedRegistration

__all__ = ["Reply", "WebApp"]

log = logging.getLogger("oidc_combinedreg.web")

_STATIC = Path(__file__).parent / "static"

_JSON = "application/json"
_HTML = "text/html; charset=utf-8"


class Reply:
    """A finished response: status, headers and body, sent as they are.

    By hand rather than ``werkzeug.Response``: every page and redirect here is one small byte
    string with headers known in full, and building werkzeug's ``Headers`` (set, setdefault,
    then the WSGI list) was a measurable share of a verify request (benchmarks/mfa_verify.py).
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        headers = [*self.headers, ("Content-Length", str(len(self.body)))]
        start_response(f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'Unknown')}", headers)
        body = [] if environ.get("REQUEST_METHOD") == "HEAD" else [self.body]
        if self.status == 413:  # the body was not read: close cleanly after it (web/oversized.py)
            return Lingering(body, environ)
        return body


#: the admin API's answer to a body over its limit (1 MiB), in its own error format
_ADMIN_TOO_LARGE = Reply(
    413,
    [("Content-Type", _JSON), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")],
    b'{"error":"bad_request","message":"the request body is over 1 MiB"}',
)

View = Callable[["WebApp", RequestContext], "Page | Redirect | HostAnswer"]

_VIEWS: dict[str, View] = {
    "admin_dashboard": admin_dashboard.dashboard,
    "signin": signin.dispatch,
    "mfa": signin.mfa,
    "cancel": signin.cancel,
    "wizard": wizard.wizard,
    "campaign": campaign.campaign,
    "manage": manage.overview,
    "add": manage.add,
    "delete": manage.delete,
    "delete_reported": manage.delete_reported,
    "rename": names.rename,
    "set_default": manage.set_default,
    "change": manage.change,
    "signout_everywhere": manage.signout_everywhere,
    "not_me": not_me.not_me,
    "activity": activity.activity,
    "activity_not_me": activity.not_me,
    "reset": reset.reset,
    "reset_step": reset.reset_step,
    # The push device's API: signed JSON requests without a session (see web/device_api.py).
    "device_enroll": device_api.enroll,
    "device_pending": device_api.pending,
    "device_respond": device_api.respond,
    "device_remove": device_api.remove,
    "device_subscribe": device_api.subscribe,
    "device_unsubscribe": device_api.unsubscribe,
    "push_status": device_api.status,
}

#: the characters werkzeug leaves unquoted in a built query (the URL standard's)
_QUERY_SAFE = "!$'()*,/:;?@"
#: what ``quote_plus`` never changes (letters, digits, ``_.-~``)
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")

_URLS = Map(
    [
        Rule("/", endpoint="manage"),
        Rule("/signin", endpoint="signin"),
        Rule("/mfa", endpoint="mfa"),
        Rule("/signin/cancel", endpoint="cancel"),
        Rule("/wizard", endpoint="wizard"),
        Rule("/campaign", endpoint="campaign"),
        Rule("/add/<kind>", endpoint="add"),
        Rule("/methods/<method_id>/delete", endpoint="delete"),
        Rule("/methods/<method_id>/delete-reported", endpoint="delete_reported"),
        Rule("/methods/<method_id>/rename", endpoint="rename"),
        Rule("/methods/<method_id>/change", endpoint="change"),
        Rule("/default", endpoint="set_default"),
        Rule("/signout-everywhere", endpoint="signout_everywhere"),
        Rule("/not-me/<token>", endpoint="not_me"),
        Rule("/activity", endpoint="activity"),
        Rule("/activity/not-me", endpoint="activity_not_me"),
        Rule("/reset", endpoint="reset"),
        Rule("/reset/<step>", endpoint="reset_step"),
        Rule("/device/enroll", endpoint="device_enroll"),
        Rule("/device/pending", endpoint="device_pending"),
        Rule("/device/respond", endpoint="device_respond"),
        Rule("/device/remove", endpoint="device_remove"),
        Rule("/device/subscribe", endpoint="device_subscribe"),
        Rule("/device/unsubscribe", endpoint="device_unsubscribe"),
        Rule("/push/status", endpoint="push_status"),
        Rule("/static/<path:filename>", endpoint="static"),
        Rule("/admin/", endpoint="admin_dashboard"),
    ],
    strict_slashes=False,
)


def _redirect_json(location: str) -> bytes:
    """A redirect's JSON twin, ``{"redirect":"..."}``: one orjson call, where ``json.dumps``
    with arguments built an encoder at every redirect a JSON client is sent (the benchmarks'
    MFA verify asks for JSON)."""
    return orjson.dumps({"redirect": location})


class WebApp:
    """Serves every path under the prefix. Holds no per-request state."""

    def __init__(self, reg: CombinedRegistration) -> None:
        self.reg = reg
        self.config = reg.config
        self.prefix = reg.config.web.prefix
        general = reg.config.general
        self.renderer = Renderer(
            reg.config.web.template_dirs, Catalogs(general.languages, general.catalog_dirs)
        )
        branding = reg.config.web.branding
        self._brand_css = brand_css(branding).encode()
        # The pages' header set (web/headers.py, the one the hosts' pages get too)
        self._headers = tuple(page_headers(reg.config.web, https=False))
        #: the same, each with its lower-case name (a page's own headers replace them by name)
        self._named_headers = tuple((name.lower(), (name, value)) for name, value in self._headers)
        self._network = reg.config.conditional_access.network
        self.admin_api = AdminApi(reg)
        # Bound once: matching and building read the adapter and never change it (thread-safe).
        self._builder = self._router = _URLS.bind("localhost", script_name=self.prefix)
        # The paths of the rules without variable parts, built once: a redirect to one of them
        # (every step of a sign-in) then costs a query string, not a werkzeug build.
        self._fixed = {
            rule.endpoint: self._builder.build(rule.endpoint, {})
            for rule in _URLS.iter_rules()
            if not rule.arguments
        }
        # The same rules by path, for matching: a dict lookup answers what werkzeug's matcher
        # (a state machine with a regex per part) answers for a path without variable parts,
        # since the matcher prefers a static part to a variable one; every other path (and a
        # near miss werkzeug redirects, "/admin") goes to the matcher.
        self._by_path = {
            rule.rule: rule.endpoint for rule in _URLS.iter_rules() if not rule.arguments
        }

    def url(self, endpoint: str, **values: Any) -> str:
        path = self._fixed.get(endpoint)
        if path is None:
            return self._builder.build(endpoint, values)
        # What werkzeug's build does with the values that are not path parts: None is left out.
        query = [(name, str(value)) for name, value in values.items() if value is not None]
        if not query:
            return path
        if all(_PLAIN.fullmatch(name) and _PLAIN.fullmatch(value) for name, value in query):
            # Nothing to quote (a continuation id, a method id): urlencode's answer, joined.
            return f"{path}?{'&'.join(f'{name}={value}' for name, value in query)}"
        return f"{path}?{urlencode(query, safe=_QUERY_SAFE)}"

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # For this call only, and nothing of it stays with the thread afterwards: the host's
        # catalogs ([general] catalog_dirs) serve the request's pages and messages, and the
        # host's Directory answers once per user for the whole request (directory.py), and the
        # store may keep what a read brought along (store/request_reads.py). Set and
        # reset by their tokens: contextvars.copy_context().run and a generator context manager
        # around every request cost more (benchmarks/verify_profile.py).
        catalogs = use_catalogs(self.renderer.catalogs)
        users = RequestScopedDirectory.open_scope()
        reads = request_reads.open_scope()
        try:
            return self._serve(environ, start_response)
        finally:
            request_reads.close_scope(reads)
            RequestScopedDirectory.close_scope(users)
            end_catalogs(catalogs)

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")[len(self.prefix) :] or "/"
        if path.startswith("/admin/api/"):  # bearer token, no session or cookie: its own app
            if declared_too_large(environ, ADMIN_MAX_BODY):  # before the token is even read
                return _ADMIN_TOO_LARGE(environ, start_response)
            return self.admin_api(environ, start_response)
        if path == "/app" or path.startswith(pwa.PATH):  # the authenticator web app: static
            return pwa.app_response(self, path, environ)(environ, start_response)
        if declared_too_large(environ, MAX_BODY):
            # At once, whatever the page: nothing here reads more, and a view that answers
            # before reading (signed out, CSRF) would leave the body on the connection.
            return self.error_response(environ, start_response, RequestEntityTooLarge())
        endpoint = self._by_path.get(path)
        if endpoint is not None:
            args: Mapping[str, Any] = {}
            not_found: HTTPException | None = None
        else:
            endpoint, args, not_found = self._match(path)
        if endpoint == "static":
            return self._static(str(args["filename"]), environ)(environ, start_response)
        try:
            ctx = self._context(environ)
        except StoreUnavailable as exc:
            log.error("store unavailable: %s", exc)
            ctx = self._context(environ, with_session=False)
            return self._respond(ctx, error_page(exc))(environ, start_response)
        try:
            if not_found is not None:
                raise not_found
            ctx.path_args = args
            resumed = cookie_check.resume(self, ctx) if endpoint == "signin" else None
            result = resumed or _VIEWS[endpoint](self, ctx)
        except Exception as exc:  # noqa: BLE001 - mapped to a page in one place, or re-raised
            if isinstance(exc, StoreUnavailable):
                log.error("store unavailable: %s", exc)
            result = cookie_check.explain(self, ctx, error_page(exc))
            result = login_link.signed_out(self, ctx, endpoint, result)  # [web].login_url
        return self._respond(ctx, result)(environ, start_response)

    def _match(self, path: str) -> tuple[str, Mapping[str, Any], HTTPException | None]:
        """werkzeug's match of a path that is not one of ``_by_path``: its endpoint and
        arguments, or its 404 (or redirect) to raise once the page's context is made."""
        try:
            endpoint, args = self._router.match(path)
        except HTTPException as exc:
            return "", {}, exc
        return str(endpoint), args, None

    def error_response(
        self, environ: WSGIEnvironment, start_response: StartResponse, exc: Exception
    ) -> Iterable[bytes]:
        ctx = self._context(environ, with_session=False)
        return self._respond(ctx, error_page(exc))(environ, start_response)

    def context_for(self, environ: WSGIEnvironment) -> RequestContext:
        """The /authorize guard's context: without the session (the guard loads it itself),
        and without a page's language or ``?c=``: the guard draws no page (its errors are the
        host's or :meth:`error_response`'s, which choose their own) and the query is the
        relying party's, which the guard parses once itself. Choosing a language parsed that
        query a second time at each /authorize."""
        reg = self.reg
        return RequestContext(
            environ=environ,
            session=None,
            user=None,
            lang=self.config.general.default_language,
            ip=reg.client_ip(environ),
            now=reg.clock.now(),
            json=False,
        )

    # -- request context ----------------------------------------------------------------------

    def _context(self, environ: WSGIEnvironment, *, with_session: bool = True) -> RequestContext:
        reg = self.reg
        ctx = RequestContext(
            environ=environ,
            session=None,
            user=None,
            lang="en",  # chosen below, from the query that the context parses
            ip=reg.client_ip(environ),
            now=reg.clock.now(),
            json=wants_json(environ.get("HTTP_ACCEPT", "")),
        )
        ctx.cid = ctx.args.get("c")
        lang, remember = self.renderer.catalogs.choose(
            ctx.args.get("lng"),
            ctx.cookie(LANG_COOKIE),
            ctx.header("Accept-Language"),
            self.config.general.default_language,
        )
        ctx.lang = lang
        if remember:
            ctx.cookies.append(
                f"{LANG_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax"
                + ("; Secure" if self.config.web.secure_cookies else "")
            )
        session = reg.sessions.load(environ) if with_session else None
        if session is not None and session.user_id is not None:
            user = reg.directory.get_user(session.user_id)
            if user is not None and user.enabled:
                ctx.session, ctx.user = session, user
        return ctx

    # -- responses ----------------------------------------------------------------------------

    def _respond(self, ctx: RequestContext, result: Page | Redirect | HostAnswer) -> Reply:
        if ctx.session is not None and (ctx.session_dirty or ctx.session.modified):
            try:
                saved = self.reg.sessions.save(ctx.session)
            except StoreUnavailable as exc:
                log.error("store unavailable while saving a session: %s", exc)
                result, ctx.session = error_page(exc), None
            else:
                if saved:
                    # Only a value the browser does not hold yet (a new session, a rotation):
                    # the cookie has no Max-Age to refresh, so the same value again would be
                    # work and bytes for nothing (decision 199).
                    if self.reg.sessions.sid_from_environ(ctx.environ) != ctx.session.sid:
                        ctx.cookies.append(self.reg.sessions.set_cookie_header(ctx.session))
                else:  # ended while this request ran: what it did is not for a live session
                    result, ctx.session = error_page(AccessDenied("the session has ended")), None
                    ctx.cookies.append(self.reg.sessions.clear_cookie_header())
        own: tuple[tuple[str, str], ...]
        if isinstance(result, HostAnswer):
            return self._host_answer(ctx, result)
        if isinstance(result, Redirect):
            status, own = 303, (("Location", result.location),)
            if ctx.json:
                body = _redirect_json(result.location)
                mimetype = _JSON
            else:
                body, mimetype = b"", ""
        else:
            status, own = result.status, result.headers
            common = self._common(ctx)
            if ctx.json:
                body, mimetype = self.renderer.json(result, common), _JSON
            else:
                body, mimetype = self.renderer.html(result, common, ctx.lang).encode(), _HTML
        headers = list(own)
        if mimetype:
            headers.append(("Content-Type", mimetype))
        named = {name.lower() for name, _ in own}
        headers += [header for low, header in self._named_headers if low not in named]
        headers.append(("Vary", "Accept, Accept-Language, Cookie"))
        headers += [("Set-Cookie", cookie) for cookie in ctx.cookies]
        if self.is_https(ctx.environ):
            headers = with_https_headers(headers, self.config.web)
        # A host's SecurityHeaders with the same config has nothing to add (web/headers.py).
        ctx.environ[PAGE_HEADERS_APPLIED] = self.config.web
        return Reply(status, headers, body)

    # -- https --------------------------------------------------------------------------------

    def is_https(self, environ: WSGIEnvironment) -> bool:
        """Came over https, directly or through a trusted TLS proxy (web/headers.py)."""
        return request_is_https(environ, self._network)

    def cookie_headers(self, environ: WSGIEnvironment, cookies: list[str]) -> list[tuple[str, str]]:
        """``Set-Cookie`` headers for the middleware's cookies on a host response: ``Secure``
        over https, whatever ``web.secure_cookies`` says (a demo on plain http turns it off)."""
        https = self.is_https(environ)
        return [("Set-Cookie", secure_cookie(c) if https else c) for c in cookies]

    def _host_answer(self, ctx: RequestContext, answer: HostAnswer) -> Reply:
        """The host's response, read whole (an error redirect or a small form_post page) so that
        the page's cookies go with it; in the JSON twin a redirect is ``{"redirect": ...}``."""
        started: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        chunks = answer.app(ctx.environ, start)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = int(str(started[0]).split(" ", 1)[0]), list(started[1])
        # The guard's backstop: an answer to the RP here (Cancel sign-in) is an error, never a code.
        why = backstop.finding(headers, body if len(body) <= backstop.MAX_SCANNED else None)
        if why is not None:
            headers = [
                *backstop.refuse(ctx.environ, why),
                *(("Set-Cookie", c) for c in ctx.cookies),
            ]
            return Reply(403, headers, backstop.REFUSAL)
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        location = next((v for n, v in headers if n.lower() == "location"), None)
        if ctx.json and location is not None:
            body = _redirect_json(location)
            headers = [("Location", location), ("Content-Type", _JSON)]
            status = 303
        if not any(n.lower() == "cache-control" for n, _ in headers):
            headers.append(("Cache-Control", "no-store"))
        headers += [("Set-Cookie", cookie) for cookie in ctx.cookies]
        return Reply(status, headers, body)

    def _common(self, ctx: RequestContext) -> dict[str, Any]:
        common: dict[str, Any] = {
            "organization": self.config.general.organization,
            "logo_url": self.config.web.branding.logo_url,
            "brand_css": bool(self._brand_css),
            "prefix": self.prefix,
            "url": self.url,
            "cid": ctx.cid,
            # [web].login_url: "Sign in" links (the reset's last page); signed-out pages add next
            "host_login_url": self.config.web.login_url,
            "user": {"id": ctx.user.id, "display_name": ctx.user.display_name or ctx.user.id}
            if ctx.user
            else None,
        }
        if ctx.session is not None:
            common["csrf_token"] = ctx.session.csrf_token
        return common

    def _static(self, filename: str, environ: WSGIEnvironment) -> Response:
        response = self._static_file(filename)
        if self.is_https(environ) and self.config.web.hsts_max_age:
            response.headers["Strict-Transport-Security"] = (
                f"max-age={self.config.web.hsts_max_age}"
            )
        return response

    def _static_file(self, filename: str) -> Response:
        if filename == "brand.css":  # generated from [web.branding]
            return Response(self._brand_css, mimetype="text/css")
        path = (_STATIC / filename).resolve()
        if _STATIC.resolve() not in path.parents or not path.is_file():
            return Response(status=404)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        response = Response(path.read_bytes(), mimetype=mime)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

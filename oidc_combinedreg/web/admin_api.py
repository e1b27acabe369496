"""The admin JSON API under ``<prefix>/admin/api``: a small WSGI app of its own.

It authenticates by bearer token (``admin/auth.py``), never by the browser session: it reads no
cookie and sets none, so there is nothing for a cross-site request to ride on and no CSRF token
is involved. Every answer is JSON, errors included (``{"error": code, "message": text}``), and the
OpenAPI 3.1 document is served at ``<prefix>/admin/api/openapi.json`` (no token needed to read it).

Issuing a Temporary Access Pass and importing hardware tokens bind credentials on a user's behalf,
so Conditional Access for the user action "register security information" is evaluated for the
calling admin and client IP too (SECURITY.md case 7: "admin on-behalf").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..admin.api_requests import HTTP_METHODS, RequestSchema
from ..admin.auth import AdminPrincipal, authenticate
from ..admin.openapi import openapi_document
from ..admin.service import NotSupported, UnknownUser
from ..conditional_access import REGISTER_SECURITY_INFO, Outcome, SignInContext
from ..directory import PerUserMfa
from ..exceptions import AccessDenied, InvalidInput, LimitReached, RateLimited, StoreUnavailable
from ..service.refusal_audit import RefusalAudit

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..middleware import CombinedRegistration

__all__ = ["AdminApi"]

log = logging.getLogger("oidc_combinedreg.admin")

#: a PSKC file of a few hundred tokens fits; anything bigger is refused before it is parsed
MAX_BODY = 1024 * 1024
_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)


@dataclass(frozen=True, kw_only=True)
class Call:
    """One authenticated API request."""

    request: Request
    principal: AdminPrincipal
    ip: str | None
    #: the path parameters, query parameters and JSON body, checked against the document
    args: dict[str, Any]
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.principal.actor


Result = tuple[int, Any]
Handler = Callable[["AdminApi", Call], Result]


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str = "") -> None:
        self.status, self.error, self.message = status, error, message
        super().__init__(message or error)


# -- handlers -------------------------------------------------------------------------------------


def list_methods(api: AdminApi, call: Call) -> Result:
    return 200, api.service.user_methods(call.args["user_id"])


def delete_method(api: AdminApi, call: Call) -> Result:
    if not api.service.delete_method(
        call.args["user_id"], call.args["method_id"], actor=call.actor, ip=call.ip
    ):
        raise ApiError(404, "not_found", "no such deletable method for this user")
    return 204, None


def restore_method(api: AdminApi, call: Call) -> Result:
    """A method the user reported as not theirs ("This wasn't me") back into use."""
    try:
        restored = api.service.restore_method(
            call.args["user_id"], call.args["method_id"], actor=call.actor, ip=call.ip
        )
    except LimitReached as exc:
        message = "the user has as many methods of this kind: delete one first"
        raise ApiError(409, "limit_reached", message) from exc
    if restored is None:
        raise ApiError(404, "not_found", "no such reported method for this user")
    return 200, restored


def reregister(api: AdminApi, call: Call) -> Result:
    removed = api.service.require_reregistration(call.args["user_id"], actor=call.actor, ip=call.ip)
    return 200, {"removed": removed}


def revoke_sessions(api: AdminApi, call: Call) -> Result:
    count = api.service.revoke_sessions(call.args["user_id"], actor=call.actor, ip=call.ip)
    return 200, {"revoked": count}


def get_lock(api: AdminApi, call: Call) -> Result:
    return 200, api.service.lock_state(call.args["user_id"])


def unlock(api: AdminApi, call: Call) -> Result:
    before = api.service.unlock(call.args["user_id"], actor=call.actor, ip=call.ip)
    return 200, {"user_id": before["user_id"], "was_locked": before["locked"], "before": before}


def set_per_user_mfa(api: AdminApi, call: Call) -> Result:
    state = PerUserMfa(call.body["state"])  # the document's enum: checked before
    user_id = call.args["user_id"]
    api.service.set_per_user_mfa(user_id, state, actor=call.actor, ip=call.ip)
    return 200, {"user_id": user_id, "state": state.value}


def get_tap(api: AdminApi, call: Call) -> Result:
    status = api.service.tap_status(call.args["user_id"])
    if status is None:
        raise ApiError(404, "not_found", "the user has no Temporary Access Pass")
    return 200, status.to_json()


def issue_tap(api: AdminApi, call: Call) -> Result:
    minutes, one_time = call.body.get("lifetime_minutes"), call.body.get("one_time")
    api.check_on_behalf(call)
    tap = api.service.issue_tap(
        call.args["user_id"], minutes=minutes, one_time=one_time, actor=call.actor, ip=call.ip
    )
    return 201, {
        "id": tap.id,
        "user_id": tap.user_id,
        "code": tap.code,
        "created_at": int(tap.created_at),
        "expires_at": int(tap.expires_at),
        "one_time": tap.one_time,
    }


def revoke_tap(api: AdminApi, call: Call) -> Result:
    if not api.service.revoke_tap(call.args["user_id"], actor=call.actor, ip=call.ip):
        raise ApiError(404, "not_found", "the user has no Temporary Access Pass")
    return 204, None


def import_tokens(api: AdminApi, call: Call) -> Result:
    body = call.body  # format, content required; key, default_user optional: checked before
    api.check_on_behalf(call)
    result = api.service.import_hardware_tokens(
        fmt=body["format"],
        content=body["content"],
        key=body.get("key"),
        default_user=body.get("default_user"),
        actor=call.actor,
        ip=call.ip,
    )
    return (200 if not result["problems"] else 422), result


def registration_report(api: AdminApi, call: Call) -> Result:
    rows = api.service.registration_rows(call.query.get("user"))
    return 200, {"users": [r.to_json() for r in rows]}


def campaign_report(api: AdminApi, call: Call) -> Result:
    rows = api.service.campaign_rows(call.query.get("user"))
    return 200, {"users": [r.to_json() for r in rows]}


def usage_report(api: AdminApi, call: Call) -> Result:
    summary = api.service.usage(since=call.query.get("since"), until=call.query.get("until"))
    return 200, summary.to_json()


def audit_log(api: AdminApi, call: Call) -> Result:
    events = api.service.audit(
        user_id=call.query.get("user"),
        event=call.query.get("event"),
        since=call.query.get("since"),
        until=call.query.get("until"),
        limit=call.query.get("limit", 100),
    )
    return 200, {"events": events}


#: the document's operationId -> its handler (``routes`` checks that both lists agree)
_HANDLERS: dict[str, Handler] = {
    "listMethods": list_methods,
    "deleteMethod": delete_method,
    "restoreMethod": restore_method,
    "requireReregistration": reregister,
    "revokeSessions": revoke_sessions,
    "setPerUserMfa": set_per_user_mfa,
    "getLock": get_lock,
    "unlock": unlock,
    "getTap": get_tap,
    "issueTap": issue_tap,
    "revokeTap": revoke_tap,
    "importHardwareTokens": import_tokens,
    "registrationReport": registration_report,
    "usageReport": usage_report,
    "campaignReport": campaign_report,
    "auditLog": audit_log,
}


def routes(document: dict[str, Any]) -> Map:
    """The router, from the document's paths: ``{user_id}`` becomes ``<user_id>``, each
    operation's endpoint is its operationId. Every operation needs a handler and vice versa."""
    rules = [Rule("/openapi.json", endpoint="openapi", methods=["GET"])]
    for path, item in document["paths"].items():
        werkzeug_path = path.replace("{", "<").replace("}", ">")
        for method in HTTP_METHODS:
            if method in item:
                rules.append(
                    Rule(werkzeug_path, endpoint=item[method]["operationId"], methods=[method])
                )
    endpoints = {r.endpoint for r in rules} - {"openapi"}
    if endpoints != set(_HANDLERS):
        raise RuntimeError(
            f"admin API: operations without a handler or handlers without one: "
            f"{sorted(endpoints ^ set(_HANDLERS))}"
        )
    return Map(rules, strict_slashes=False)


class AdminApi:
    """Serves ``<prefix>/admin/api/...``. Holds no per-request state."""

    def __init__(self, reg: CombinedRegistration) -> None:
        self.reg = reg
        self.service = reg.admin
        self.root = reg.config.web.prefix + "/admin/api"
        #: the one source of truth: served as it is, routed and checked against
        self.document = openapi_document(self.root, reg.config.admin)
        self._urls = routes(self.document)
        self._requests = RequestSchema(self.document)
        #: a denied caller's repeats are not audited (decision 188)
        self._denials = RefusalAudit(reg.store, "admin-denied")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY
        status, body, headers = self._handle(request)
        response = Response(
            json.dumps(body, separators=(",", ":")) if body is not None else None,
            status=status,
            mimetype="application/json" if body is not None else None,
        )
        for name, value in (*_HEADERS, *headers):
            response.headers[name] = value
        return response(environ, start_response)

    def _handle(self, request: Request) -> tuple[int, Any, list[tuple[str, str]]]:
        # request.path, not PATH_INFO: WSGI carries the path's UTF-8 bytes as latin-1 characters,
        # and a path parameter's maxLength counts characters (an id of 150 "Ω" is 300 there).
        path = request.path[len(self.root) :] or "/"
        adapter = self._urls.bind("localhost", path_info=path)
        try:
            endpoint, args = adapter.match(method=request.method)
        except MethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.valid_methods or ()))
            return 405, {"error": "method_not_allowed"}, [("Allow", allow)]
        except HTTPException as exc:
            return exc.code or 404, {"error": "not_found"}, []
        if endpoint == "openapi":
            return 200, self.document, []
        ip = self.reg.client_ip(request.environ)
        try:
            principal = authenticate(
                self.reg.config.admin, self.reg.directory, request.headers.get("Authorization")
            )
            checked = self._requests.check(
                endpoint,
                path=args,
                query=list(request.args.items(multi=True)),
                body=request.get_data(cache=True) if self._requests.takes_body(endpoint) else None,
                mimetype=request.mimetype,
            )
            call = Call(
                request=request,
                principal=principal,
                ip=ip,
                args=checked.path,
                query=checked.query,
                body=checked.body,
            )
            status, body = _HANDLERS[endpoint](self, call)
        except AccessDenied as exc:
            return self._denied(exc, ip)
        except ApiError as exc:
            return exc.status, {"error": exc.error, "message": exc.message}, []
        except UnknownUser:
            return 404, {"error": "not_found", "message": "unknown user"}, []
        except NotSupported as exc:
            return 501, {"error": "not_supported", "message": exc.message}, []
        except InvalidInput as exc:
            return 400, {"error": "bad_request", "message": f"{exc.field}: {exc.message}"}, []
        except RateLimited as exc:
            return 429, {"error": "rate_limited"}, [("Retry-After", str(exc.retry_after))]
        except StoreUnavailable as exc:
            log.error("store unavailable: %s", exc)
            return 503, {"error": "store_unavailable"}, [("Retry-After", "30")]
        except HTTPException as exc:  # a body over MAX_BODY, a malformed form
            code = exc.code or 400
            return code if code in (400, 413) else 400, {"error": "bad_request"}, []
        return status, body, []

    def _denied(self, exc: AccessDenied, ip: str | None) -> tuple[int, Any, list[tuple[str, str]]]:
        if exc.reason in ("admin: no bearer token", "admin: api disabled (no token configured)"):
            return 401, {"error": "unauthorized"}, [("WWW-Authenticate", "Bearer")]
        # A wrong token is anyone's: audited once per address and window (no audit flood); a
        # denial of a real token (not an admin any more, Conditional Access) every time.
        anonymous = exc.reason == "admin: wrong token"
        extra = self._denials.detail(ip or "-") if anonymous else {}
        if extra is not None:
            self.reg.info.audit("admin.denied", None, "blocked", ip=ip, reason=exc.reason, **extra)
        if exc.reason == "admin: wrong token":
            return (
                401,
                {"error": "unauthorized"},
                [("WWW-Authenticate", 'Bearer error="invalid_token"')],
            )
        return 403, {"error": "forbidden"}, []

    def check_on_behalf(self, call: Call) -> None:
        """Conditional Access "register security information" for the admin acting for a user."""
        principal = call.principal
        admin = self.reg.directory.get_user(principal.user_id) if principal.user_id else None
        info = self.reg.client_ip_info(call.request.environ)
        decision = self.reg.ca.evaluate(
            SignInContext(
                user_id=principal.user_id or principal.actor,
                groups=admin.groups if admin else frozenset(),
                target=REGISTER_SECURITY_INFO,
                client_ip=info.ip,
                client_ip_malformed=info.malformed,
            )
        )
        if decision.outcome is not Outcome.ALLOW:
            self.reg.info.audit(
                "ca.evaluated",
                call.args.get("user_id"),
                "blocked",
                ip=call.ip,
                correlation_id=decision.correlation_id,
                target=str(REGISTER_SECURITY_INFO),
                reason=decision.reason,
                actor=call.actor,
            )
            raise AccessDenied("admin: conditional access")

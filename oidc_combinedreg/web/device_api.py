"""The push authenticator's HTTP endpoints: the device's JSON API, and the browser's status poll.

Device endpoints (``/device/enroll``, ``/device/pending``, ``/device/respond``,
``/device/remove``, ``/device/subscribe``, ``/device/unsubscribe``) are called by an app, not a
browser: they carry no cookie and authenticate every request by an ECDSA signature with the
device's key (enrollment: by the one-time token from the QR code plus a proof of key
possession). So they drop any session the request might carry, never set a cookie, and have no
CSRF token to check: CSRF rides on ambient credentials (cookies), and these requests have none
that count.
They always answer JSON. docs/methods/push.md describes the protocol.

``/push/status`` is the browser's side: a read-only GET under the session cookie that tells the
page's script (``static/push.js``) whether the device has answered yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import (
    AccessDenied,
    ChallengeExpired,
    InvalidInput,
    LimitReached,
    RateLimited,
    VerificationFailed,
)
from ..methods.push import Outcome
from ..policy.compliance import ReplaceFirst
from .render import Page

if TYPE_CHECKING:
    from .app import WebApp
    from .context import RequestContext

__all__ = ["enroll", "pending", "remove", "respond", "status", "subscribe", "unsubscribe"]

_MESSAGES = {
    Outcome.APPROVED: "Approved.",
    Outcome.DENIED: "Denied.",
    Outcome.WRONG_NUMBER: "The number did not match: the sign-in was denied.",
    Outcome.REPORTED: (
        "Reported and denied. Someone may know your password: change it now, "
        "and tell your helpdesk if you did not try to sign in."
    ),
}


def _device_request(ctx: RequestContext) -> None:
    """No session, no cookies, JSON out: the device authenticates each request itself."""
    ctx.json = True
    ctx.session = None
    ctx.user = None
    ctx.cookies.clear()
    if ctx.method != "POST" or ctx.mimetype != "application/json":
        raise InvalidInput("request", "expected a POST with a JSON body")


def _error(exc: Exception) -> Page:
    if isinstance(exc, VerificationFailed):
        return Page("device_error", {"error": "unauthorized", "reason": exc.reason}, 401)
    if isinstance(exc, ChallengeExpired):
        return Page("device_error", {"error": "expired"}, 410)
    if isinstance(exc, LimitReached):
        return Page("device_error", {"error": "limit_reached", "limit": exc.limit}, 409)
    if isinstance(exc, RateLimited):
        return Page("device_error", {"error": "rate_limited"}, 429)
    if isinstance(exc, InvalidInput):
        return Page("device_error", {"error": "bad_request", "field": exc.field}, 400)
    raise exc


def enroll(web: WebApp, ctx: RequestContext) -> Page:
    """``POST /device/enroll``: the device registers its public key with the QR code's token."""
    try:
        _device_request(ctx)
        record, seed = web.reg.info.push.enroll_device(ctx.fields(), ip=ctx.ip)
    except (VerificationFailed, ChallengeExpired, LimitReached, InvalidInput) as exc:
        return _error(exc)
    data: dict[str, Any] = {
        "device_id": record.data["device_id"],
        "account": record.data.get("account", ""),
        "issuer": web.config.totp.issuer,
        "totp": {"secret": seed, "algorithm": "SHA1", "digits": 6, "period": 30},
    }
    return Page("device_enrolled", data, 201)


def pending(web: WebApp, ctx: RequestContext) -> Page:
    """``POST /device/pending``: the requests waiting for this device (signed poll)."""
    push = web.reg.info.push
    try:
        _device_request(ctx)
        record, requests = push.poll(ctx.fields())
    except (VerificationFailed, InvalidInput) as exc:
        return _error(exc)
    data: dict[str, Any] = {"requests": requests}
    if push.web_push is not None:  # the app learns the key to subscribe with (RFC 8292 3.2)
        data["web_push"] = push.web_push.info(record)
    return Page("device_pending", data)


def subscribe(web: WebApp, ctx: RequestContext) -> Page:
    """``POST /device/subscribe``: the web app's Web Push subscription for this device (signed,
    timestamped); ``/device/unsubscribe`` forgets it. 404 when Web Push is not configured."""
    return _subscription(web, ctx, subscribe=True)


def unsubscribe(web: WebApp, ctx: RequestContext) -> Page:
    return _subscription(web, ctx, subscribe=False)


def _subscription(web: WebApp, ctx: RequestContext, *, subscribe: bool) -> Page:
    notifier = web.reg.info.push.web_push
    try:
        _device_request(ctx)
        if notifier is None:
            return Page("device_error", {"error": "not_configured"}, 404)
        if subscribe:
            notifier.subscribe(ctx.fields(), ip=ctx.ip)
        else:
            notifier.unsubscribe(ctx.fields(), ip=ctx.ip)
    except (VerificationFailed, InvalidInput) as exc:
        return _error(exc)
    return Page("device_subscription", {"result": "subscribed" if subscribe else "unsubscribed"})


def respond(web: WebApp, ctx: RequestContext) -> Page:
    """``POST /device/respond``: the signed answer to one request."""
    try:
        _device_request(ctx)
        outcome = web.reg.info.push.respond(ctx.fields(), ip=ctx.ip)
    except (VerificationFailed, ChallengeExpired, InvalidInput) as exc:
        return _error(exc)
    return Page("device_response", {"result": outcome.value, "message": _MESSAGES[outcome]})


def remove(web: WebApp, ctx: RequestContext) -> Page:
    """``POST /device/remove``: the app removed the account; delete this device (signed,
    timestamped). The security-info page's rule holds: a device the user's policies still need
    stays until another method replaces it (409 ``replace_first``)."""
    try:
        _device_request(ctx)
        record = web.reg.info.push.removal(ctx.fields())
        deleted = web.reg.info.delete_method(record.user_id, record.id, ip=ctx.ip)
    except (VerificationFailed, InvalidInput) as exc:
        return _error(exc)
    except ReplaceFirst:
        return Page("device_error", {"error": "replace_first"}, 409)
    if not deleted:  # removed meanwhile (the security-info page, a parallel request)
        return Page("device_error", {"error": "expired"}, 410)
    return Page("device_removed", {"result": "removed"})


def status(web: WebApp, ctx: RequestContext) -> Page:
    """``GET /push/status?for=mfa|enroll``: has the device answered? Read-only, this session."""
    session, _ = ctx.require_session()
    push = web.reg.info.push
    pending_state = session.data.get("pending") or {}
    which = ctx.arg("for")
    if which == "enroll":
        value, _ = push.enrollment_status(pending_state.get("push"))
    elif which == "mfa":
        value = push.request_status(session.data.get("mfa_state"))
    else:
        raise AccessDenied("unknown status")
    return Page("push_status", {"status": value})

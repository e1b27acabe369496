"""Exceptions to HTTP status and page, in one place."""

from __future__ import annotations

from werkzeug.exceptions import HTTPException

from ..delivery.base import DeliveryFailed
from ..exceptions import (
    AccessDenied,
    ChallengeExpired,
    CombinedRegError,
    LimitReached,
    MethodError,
    RateLimited,
    StoreUnavailable,
)
from .render import Page

__all__ = ["error_page"]


def error_page(exc: Exception) -> Page:
    """The page for an exception that escaped a view. Never reveals internals."""
    if isinstance(exc, StoreUnavailable):
        return Page("error", {"error": "store_unavailable"}, 503, (("Retry-After", "30"),))
    if isinstance(exc, DeliveryFailed):
        # Permanent (a refused recipient) is the user's to fix; otherwise the provider is down.
        code = 400 if exc.permanent else 503
        return Page("error", {"error": "delivery_failed", "channel": str(exc.channel)}, code)
    if isinstance(exc, AccessDenied):
        if exc.reason == "no signed-in session":
            return Page("error", {"error": "signed_out"}, 401)
        if exc.reason.startswith("csrf"):
            return Page("error", {"error": "csrf"}, 403)
        return Page("error", {"error": "forbidden"}, 403)
    if isinstance(exc, RateLimited):
        return Page(
            "error",
            {"error": "rate_limited", "retry_after": exc.retry_after},
            429,
            (("Retry-After", str(exc.retry_after)),),
        )
    if isinstance(exc, LimitReached):
        return Page("error", {"error": "limit_reached", "limit": exc.limit}, 409)
    if isinstance(exc, ChallengeExpired):
        return Page("error", {"error": "expired"}, 400)
    if isinstance(exc, MethodError | CombinedRegError):
        return Page("error", {"error": "bad_request"}, 400)
    if isinstance(exc, HTTPException):
        code = exc.code or 400
        names = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return Page("error", {"error": names.get(code, "bad_request")}, code)
    raise exc

"""CSRF tokens that exist before any session (the login form; SECURITY.md case 51).

A signed double-submit cookie: the browser gets a random value in an HttpOnly cookie, and the form
carries an HMAC of it under the app's secret key. A cross-site page can make the browser send the
cookie, but it cannot read it to compute the form value. ``Sec-Fetch-Site: cross-site`` is refused
outright.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, current_app, g, request

__all__ = ["COOKIE_NAME", "FIELD_NAME", "csrf_ok", "csrf_token", "init_csrf"]

COOKIE_NAME = "idp_csrf"
FIELD_NAME = "csrf_token"


def _sign(value: str) -> str:
    key = str(current_app.secret_key).encode()
    return hmac.new(key, b"login-csrf:" + value.encode(), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The value to put in the form's hidden field; sets the cookie on this response if needed."""
    value = request.cookies.get(COOKIE_NAME)
    if not value or len(value) > 100:
        value = g.get("new_csrf_cookie") or secrets.token_urlsafe(32)
        g.new_csrf_cookie = value
    return _sign(value)


def csrf_ok() -> bool:
    """Whether this POST carries a token matching its cookie and did not come from another site."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return False
    cookie = request.cookies.get(COOKIE_NAME, "")
    sent = request.form.get(FIELD_NAME, "")
    # Bytes: compare_digest raises on str with characters beyond ASCII, and a form holds anything.
    return bool(cookie and sent) and hmac.compare_digest(_sign(cookie).encode(), sent.encode())


def init_csrf(app: Flask, *, secure: bool) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def _set_cookie(response: Response) -> Response:
        value = g.get("new_csrf_cookie")
        if value:
            response.set_cookie(
                COOKIE_NAME, value, httponly=True, secure=secure, samesite="Lax", path="/"
            )
        return response

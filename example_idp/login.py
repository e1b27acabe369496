"""The IdP's own pages: home, login (password, CSRF, throttle) and logout."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]

from .client_address import client_address
from .csrf import csrf_ok
from .host import current_idp, current_sign_in, end_sign_in, start_sign_in

__all__ = ["LOGIN_FOR", "LOGIN_PATH", "REAUTHENTICATED", "bp", "safe_next"]

bp = Blueprint("login", __name__)

#: the login page, under the app's root (oidc_views builds its URL without url_for)
LOGIN_PATH = "/login"
#: host session keys: the authorization request that asked for a fresh password, and the one that got it
LOGIN_FOR = "login_for"
REAUTHENTICATED = "reauthenticated"


def safe_next(target: str | None) -> str:
    """A same-site path to continue to after login; anything else becomes the home page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("login.home")
    if " " in target or not target.isprintable():
        # A URL the browser sent is escaped; raw white space or a control character is not one
        # (CR LF would end the Location header: a 500 at best; urlsplit drops tabs silently).
        # The space is the one white space character str.isprintable() lets through.
        return url_for("login.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("login.home")
    return target


#: RFC 8176 amr values in words, for the home page ("mfa" says nothing more than the others)
_AMR_WORDS = {
    "pwd": "password",
    "otp": "one-time code",
    "hwk": "security key",
    "swk": "app or passkey",
    "sms": "text message",
    "tel": "phone call",
    "fpt": "fingerprint",
    "face": "face",
    "pin": "PIN",
    "user": "user presence",
}


def _how(amr: tuple[str, ...]) -> str:
    return " + ".join(_AMR_WORDS.get(a, a) for a in amr if a != "mfa")


@bp.get("/")
def home() -> ResponseReturnValue:
    # What the middleware knows of this browser's sign-in (reg.current_sign_in): how and when,
    # for this host's own page; shown only when it is the user Flask-Login has signed in.
    idp = current_idp()
    state = None
    if current_user.is_authenticated and idp.registration is not None:
        state = idp.registration.current_sign_in(request.environ)
        if state is not None and state.user_id != current_user.get_id():
            state = None
    user = idp.directory.get_user(state.user_id) if state is not None else None
    return render_template(
        "example_idp/home.html",
        signed_in=current_sign_in(),
        middleware_sign_in=state,
        middleware_user=user,
        how=_how(state.amr) if state is not None else "",
        when=dt.datetime.fromtimestamp(state.auth_time, dt.UTC) if state is not None else None,
    )


@bp.route(LOGIN_PATH, methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("example_idp/login.html", next_url=next_url, error=None)
    if not csrf_ok():
        abort(400, "The sign-in form expired or came from another site. Reload it and retry.")
    idp = current_idp()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    ip = client_address()
    attempt = idp.throttle.check(username, ip)
    if attempt.wait:
        error = f"Too many failed sign-ins. Try again in {attempt.wait} seconds."
        page = render_template("example_idp/login.html", next_url=next_url, error=error)
        return page, 429, {"Retry-After": str(attempt.wait)}
    user = idp.directory.check_password(username, password) if username else None
    if user is None:
        idp.throttle.failed(username, ip)
        error = "That user name and password don't match."
        return render_template("example_idp/login.html", next_url=next_url, error=error), 401
    idp.throttle.succeeded(username, ip, checked=attempt)
    pending = session.get(LOGIN_FOR)
    start_sign_in(user)
    if isinstance(pending, str):
        # The authorization request that demanded a fresh password (prompt=login, max_age) got it.
        session[REAUTHENTICATED] = pending
    return redirect(next_url)


@bp.route("/login/tap", methods=["GET", "POST"])
def login_tap() -> ResponseReturnValue:
    """ "Use a Temporary Access Pass": an admin-issued pass instead of the password."""
    next_url = safe_next(request.values.get("next"))
    idp = current_idp()
    if idp.registration is None:
        abort(404)
    template = "example_idp/login_tap.html"
    if request.method == "GET":
        return render_template(template, next_url=next_url, error=None)
    if not csrf_ok():
        abort(400, "The sign-in form expired or came from another site. Reload it and retry.")
    username = request.form.get("username", "").strip()
    ip = client_address()
    # Counters of its own: wrong passes never refuse the password (SECURITY.md case 57).
    attempt = idp.throttle.check(username, ip, "tap")
    if attempt.wait:
        error = f"Too many failed sign-ins. Try again in {attempt.wait} seconds."
        return render_template(template, next_url=next_url, error=error), 429
    code = request.form.get("pass", "")
    user = idp.directory.get_user(username) if username else None
    # The middleware checks the pass (expiry, one-time use, throttling) and audits every attempt.
    if user is None or not idp.registration.verify_temporary_access_pass(
        request.environ, user.id, code
    ):
        idp.throttle.failed(username, ip, "tap")
        error = "That Temporary Access Pass isn't valid. Ask your administrator for a new one."
        return render_template(template, next_url=next_url, error=error), 401
    idp.throttle.succeeded(username, ip, "tap", checked=attempt)
    start_sign_in(user, tap_verified=True)
    return redirect(next_url)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if not csrf_ok():
        abort(400, "The sign-out form expired or came from another site.")
    if current_user.is_authenticated:
        end_sign_in()
    return render_template("example_idp/logged_out.html")

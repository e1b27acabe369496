"""Loud mis-wiring: the log lines that name the likely cause when a host is wired wrongly.

Each mis-wiring below otherwise shows only as a login loop (the host asks for the password again
and again). Checks cost nothing on requests the middleware passes through: the one mark the
middleware puts in every environ (:data:`SEEN_KEY`) is read only when the host calls in
(``password_verified``, ``sign_in_result``). docs/troubleshooting.md goes from symptom to cause.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "CORRELATION_KEY",
    "GUARD_KEY",
    "SEEN_KEY",
    "ca_evaluated",
    "check_cookie_transport",
    "check_served",
    "decided",
    "explain_no_result",
    "framework_hint",
    "no_user",
    "step_decided",
]

log = logging.getLogger("oidc_combinedreg")

#: environ key: the middleware instance this request passed through
SEEN_KEY = "combinedreg.via"
#: environ key: why the guard passed this /authorize request on as it did (DEBUG, diagnostics)
GUARD_KEY = "combinedreg.guard"
#: environ key: the Conditional Access correlation id of this request's last sign-in decision
CORRELATION_KEY = "combinedreg.correlation_id"

_SERVE_IT = (
    "Serve the middleware, not the app it wraps: in Flask, app.wsgi_app = "
    "CombinedRegistration(app.wsgi_app, ...) (docs/troubleshooting.md)."
)


def framework_hint(app: Any) -> str:
    """When the wrapped app is a framework's app object (Flask's has ``wsgi_app``), the likely
    mistake: the middleware built around the app object while the server still runs that object."""
    if callable(getattr(app, "wsgi_app", None)):
        return (
            f" The middleware wraps a {type(app).__name__} object itself: a server that runs "
            "that object (flask run, app.run(), gunicorn module:app) never calls the middleware."
        )
    return ""


def check_served(reg: Any, environ: WSGIEnvironment, call: str) -> bool:
    """Did this request pass through ``reg``? If not, a WARNING naming the likely cause: the
    session cookie ``call`` sets, or the result it reads, never reaches the browser/host."""
    via = environ.get(SEEN_KEY)
    if via is reg:
        return True
    if via is None:
        log.warning(
            "%s was called for a request (%s %s) that did not pass through the middleware: "
            "its session cookie is never set and /authorize never sees a sign-in, so the host "
            "asks for the password again (a login loop).%s %s",
            call,
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            framework_hint(reg.app),
            _SERVE_IT,
        )
    else:
        log.warning(
            "%s was called on a CombinedRegistration other than the one that served this "
            "request (%s): build one middleware object and call the host contract on that one.",
            call,
            environ.get("PATH_INFO", ""),
        )
    return False


def explain_no_result(reg: Any, environ: WSGIEnvironment) -> None:
    """``sign_in_result()`` found no result: say why (DEBUG when the guard decided so, a
    WARNING when the guard never saw this request and it is an authorization request)."""
    why = environ.get(GUARD_KEY)
    if why is not None:
        log.debug("sign_in_result(): no result for this request: %s", why)
        return
    if not check_served(reg, environ, "sign_in_result()"):
        return
    query = str(environ.get("QUERY_STRING") or "")
    if "client_id=" not in query and "response_type=" not in query:
        # A host page asking who is signed in (the example IdP's home page does): not a loop.
        log.debug(
            "sign_in_result() at %r is None outside web.authorize_path; the host's own pages "
            "read current_sign_in()",
            environ.get("PATH_INFO", ""),
        )
        return
    log.warning(
        "sign_in_result() was called at %r, but the middleware guards only web.authorize_path "
        "= %r: the result is always None there and every sign-in loops back to the password "
        "(and a host that skipped the check would issue codes without MFA). Set "
        "web.authorize_path to your authorization endpoint's path as PATH_INFO sees it "
        "(without SCRIPT_NAME).",
        environ.get("PATH_INFO", ""),
        reg.config.web.authorize_path,
    )


def decided(environ: WSGIEnvironment, why: str) -> None:
    """One DEBUG line per guard decision, with the Conditional Access correlation id when the
    decision had one (never a code, cookie or token); kept for ``sign_in_result()``'s DEBUG."""
    environ[GUARD_KEY] = why
    log.debug("authorize: %s [correlation %s]", why, environ.get(CORRELATION_KEY, "-"))


def no_user(environ: WSGIEnvironment, user_id: str | None, user: Any) -> None:
    """Why a guarded request has no signed-in user; a WARNING for what loops back to the
    password (``user``: the Directory's answer for ``user_id``)."""
    if user_id is None:
        why = "nobody signed in to the middleware in this browser: to the host without a result"
    elif user is None:
        why = f"the Directory does not know user id {user_id!r}: to the host without a result"
        log.warning(
            "password_verified() was given user id %r, which the Directory's get_user() does "
            "not know: no sign-in result, so the host asks for the password again (a login "
            "loop). Pass the id get_user() accepts (not the login name or email, unless they "
            "are the same).",
            user_id,
        )
    else:
        why = f"user {user_id!r} is disabled in the Directory: to the host without a result"
        log.warning(
            "user %r is disabled in the Directory (enabled=False) but the host accepted the "
            "password: no sign-in result, so the host asks for the password again. Refuse a "
            "disabled account at the login form.",
            user_id,
        )
    decided(environ, why)


#: hosts a browser treats as a secure context over plain http (it keeps Secure cookies there)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def check_cookie_transport(reg: Any, environ: WSGIEnvironment) -> None:
    """Once per middleware: a ``Secure`` session cookie set on what looks like plain http is
    dropped by the browser (every sign-in then loops); localhost is exempt (a secure context)."""
    if getattr(reg, "_warned_http", False) or not reg.config.web.secure_cookies:
        return
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name.lower() in _LOCAL_HOSTS or name.lower().endswith(".localhost"):
        return
    if reg.web.is_https(environ):
        return
    reg._warned_http = True
    log.warning(
        "password_verified() on plain http (host %r): the session cookie is Secure "
        "(web.secure_cookies = true), which a browser on http drops, so every sign-in loops "
        "back to the password. Use https; behind a TLS proxy, list it in "
        "[network] trusted_proxies so its X-Forwarded-Proto counts; for a "
        "local demo on http, web.secure_cookies = false. (Logged once.)",
        host,
    )


def ca_evaluated(environ: WSGIEnvironment, user_id: str, target: Any, decision: Any) -> None:
    """A Conditional Access evaluation: DEBUG, and its correlation id kept for the lines after."""
    environ[CORRELATION_KEY] = decision.correlation_id
    log.debug(
        "conditional access for %r at %s: %s (%s) [correlation %s]",
        user_id,
        target,
        decision.outcome,
        decision.reason,
        decision.correlation_id,
    )


def step_decided(environ: WSGIEnvironment, user_id: str, cont: Any, step: Any) -> None:
    """A sign-in decision (the step and the policy's reasons): DEBUG."""
    log.debug(
        "sign-in decision for %r (client %r): %s because %s [correlation %s]",
        user_id,
        (cont or {}).get("client_id", ""),
        step.kind,
        ", ".join(step.reasons) or "-",
        environ.get(CORRELATION_KEY, "-"),
    )

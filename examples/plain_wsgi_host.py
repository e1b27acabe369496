"""A complete host IdP in plain WSGI (no framework), mounting oidc_combinedreg.

It shows the whole host contract in about two hundred lines: the three calls
(``password_verified``, ``sign_in_result``, ``sign_out``), a ``Directory`` and the
``AuthorizationEndpoint`` (``error_response``, ``effective_params``) through which the middleware
answers a relying party itself (``prompt=none``, "Cancel sign-in"). Its "authorization endpoint" issues toy codes:
a real host does the OAuth parts with a library (see example_idp/ for Flask + Authlib).
Run it: ``python examples/plain_wsgi_host.py`` and open http://localhost:8000/authorize?client_id=demo
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from oidc_combinedreg import (
    CombinedRegistration,
    Config,
    DirectoryUser,
    Lingering,
    PasswordRejected,
    PerUserMfa,
    SecurityHeaders,
    declared_too_large,
)

USERS = {"alice": "alice-password", "bob": "bob-password"}
#: the toy host's registered clients and their one redirect URI each
CLIENTS = {"demo": "https://rp.example.test/cb"}
CLIENT_NAMES = {"demo": "Demo app"}


class DictDirectory:
    """The host's user directory, as oidc_combinedreg sees it."""

    def __init__(self, groups: dict[str, frozenset[str]] | None = None) -> None:
        self.groups = groups or {}
        self.per_user: dict[str, PerUserMfa] = {}

    def get_user(self, user_id: str) -> DirectoryUser | None:
        if user_id not in USERS:
            return None
        return DirectoryUser(
            id=user_id,
            display_name=user_id.title(),
            email=f"{user_id}@example.test",
            groups=self.groups.get(user_id, frozenset()),
            per_user_mfa=self.per_user.get(user_id, PerUserMfa.DISABLED),
        )

    def set_password(self, user_id: str, new_password: str) -> None:
        if len(new_password) < 12:
            raise PasswordRejected(["Use at least 12 characters."])
        USERS[user_id] = new_password

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        self.per_user[user_id] = state


class Host:
    """The host IdP: a login form, an authorization endpoint, logout."""

    def __init__(self) -> None:
        self.sessions: dict[str, str] = {}  # host session id -> user id
        self.codes: dict[str, dict[str, Any]] = {}  # issued codes -> what the ID token would say
        self.reg: CombinedRegistration | None = None  # set once mounted (see make_app)
        #: this host's registered clients (a real host checks its client registry)
        self.clients = dict(CLIENTS)
        self.client_names = dict(CLIENT_NAMES)

    @property
    def redirect_uri(self) -> str:
        """Where the client "demo" gets its codes and errors."""
        return self.clients["demo"]

    @redirect_uri.setter
    def redirect_uri(self, uri: str) -> None:
        self.clients["demo"] = uri

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if declared_too_large(environ, 65536):  # refused unread, then a clean close
            start_response("413 Content Too Large", [("Content-Type", "text/plain")])
            return Lingering([b"The request is too large."], environ)
        if path == "/login":
            return self.login(environ, start_response)
        if path == "/authorize":
            return self.authorize(environ, start_response)
        if path == "/logout":
            return self.logout(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello from the host"]

    def _host_user(self, environ: dict[str, Any]) -> str | None:
        cookie: SimpleCookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        sid = cookie.get("host_sid")
        return self.sessions.get(sid.value) if sid else None

    def login(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        next_url = query.get("next", ["/"])[0]
        # Back to the authorization request, or to a security-info page ([web].login_url sends
        # a signed-out visitor here with next=/security-info/...): our own paths only.
        ours = ("/authorize", (self.reg.config.web.prefix if self.reg else "/security-info") + "/")
        if not next_url.startswith(ours) or not next_url.isprintable() or " " in next_url:
            next_url = "/"  # never redirect anywhere a query parameter says, nor add a header
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qs(environ["wsgi.input"].read(min(size, 4096)).decode())
            user = form.get("username", [""])[0]
            password = form.get("password", [""])[0]
            if USERS.get(user) is not None and secrets.compare_digest(USERS[user], password):
                assert self.reg is not None
                self.reg.password_verified(environ, user)  # (1) tell the middleware
                sid = secrets.token_urlsafe(32)  # a new host session: no fixation
                self.sessions[sid] = user
                start_response(
                    "303 See Other",
                    [
                        ("Location", next_url),
                        ("Set-Cookie", f"host_sid={sid}; Path=/; HttpOnly; SameSite=Lax"),
                    ],
                )
                return [b""]
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        action = "/login?next=" + quote(next_url, safe="")
        return [
            (
                f'<form method="post" action="{html.escape(action)}">'
                '<input name="username"><input name="password" type="password">'
                "<button>Sign in</button></form>"
            ).encode()
        ]

    def authorize(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.reg is not None
        result = self.reg.sign_in_result(environ)  # (2) what the middleware cleared
        user = self._host_user(environ)
        params = _authorization_params(environ)
        query = parse_qs(params)
        if result is None or user != result.user_id:
            first = {name: values[0] for name, values in query.items()}
            if "none" in first.get("prompt", "").split():  # OIDC Core 3.1.2.1: never a page
                return self.error_response(environ, first, "login_required", "Not signed in.")(
                    environ, start_response
                )
            here = "/authorize?" + params  # after the login, by GET (a POST's body included)
            start_response("302 Found", [("Location", "/login?next=" + quote(here, safe=""))])
            return [b""]
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "sub": result.user_id,
            "amr": list(result.amr),
            "acr": result.acr,
            "auth_time": result.auth_time,
        }
        redirect_uri = self.clients.get(query.get("client_id", [""])[0])
        if redirect_uri is None:
            return _page(start_response, "400 Bad Request", "Unknown client.")
        state = query.get("state", [""])[0]
        start_response(
            "302 Found",
            [("Location", redirect_uri + "?" + urlencode({"code": code, "state": state}))],
        )
        return [b""]

    # -- the AuthorizationEndpoint the middleware answers relying parties through ------------

    def error_response(
        self, environ: dict[str, Any], params: Mapping[str, str], error: str, description: str
    ) -> Any:
        """The error at the client's registered redirect URI, with ``state``; an unknown client
        or redirect URI gets a page instead (never redirect to an unchecked URI)."""
        registered = self.clients.get(params.get("client_id", ""))
        if registered is None or params.get("redirect_uri", registered) != registered:
            return lambda env, start: _page(start, "400 Bad Request", "Invalid client.")
        answer = {"error": error, "error_description": description}
        if "state" in params:
            answer["state"] = params["state"]
        location = registered + "?" + urlencode(answer)

        def app(env: dict[str, Any], start: Any) -> Iterable[bytes]:
            start("302 Found", [("Location", location), ("Cache-Control", "no-store")])
            return [b""]

        return app

    def effective_params(
        self, environ: dict[str, Any], params: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        """No pushed requests, request objects or client defaults here: the request as sent."""
        return params if params.get("client_id") in self.clients else None

    def client_name(self, client_id: str) -> str | None:
        """Optional (``ClientNames``): what "Recent activity" calls the app."""
        return self.client_names.get(client_id)

    def logout(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.reg is not None
        self.reg.sign_out(environ)  # (3) end the middleware's session too
        cookie: SimpleCookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        if (sid := cookie.get("host_sid")) is not None:
            self.sessions.pop(sid.value, None)
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Set-Cookie", "host_sid=; Path=/; Max-Age=0")],
        )
        return [b"signed out"]


def _page(start_response: Any, status: str, text: str) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]


def _authorization_params(environ: dict[str, Any]) -> str:
    """The request's parameters as a query: the URL's, then a POSTed form's (OIDC Core 3.1.2.1
    allows both). Toy-sized: a real host lets its OAuth library read them."""
    query = str(environ.get("QUERY_STRING", ""))
    if environ["REQUEST_METHOD"] != "POST":
        return query
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(min(size, 65536)).decode("latin-1")
    return "&".join(part for part in (query, body) if part)


def make_app(
    config: Config, directory: DictDirectory, **kwargs: Any
) -> tuple[CombinedRegistration, Host]:
    host = Host()
    kwargs.setdefault("authorization", host)
    # The host's own pages get the middleware's header set, and Secure cookies and HSTS over
    # https (one source: oidc_combinedreg/web/headers.py).
    reg = CombinedRegistration(
        SecurityHeaders(host, config), config=config, directory=directory, **kwargs
    )
    host.reg = reg
    return reg, host


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    from oidc_combinedreg import load_config

    reg, _ = make_app(load_config("example_idp/combinedreg.toml"), DictDirectory())
    print("http://localhost:8000/authorize?client_id=demo  (alice / alice-password)")
    make_server("localhost", 8000, reg).serve_forever()

"""``create_app``: the example IdP, with oidc_combinedreg mounted through its public API."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from flask import Flask, render_template, session
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user  # type: ignore[import-untyped]

from oidc_combinedreg import SecurityHeaders
from oidc_combinedreg.clock import Clock, SystemClock
from oidc_combinedreg.delivery import Delivery
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.integrations.flask import FlaskCombinedRegistration

from .authz_requests import PushedRequests
from .client_auth import ClientAuthLimits
from .clients import ClientStore
from .csrf import init_csrf
from .db import Database
from .directory import RequestRows, TomlDirectory
from .grants import CodeStore, TokenStore
from .host import AUTH_TIME_KEY, AuthlibEndpoint, Idp, LoginUser, Registration, end_sign_in
from .keys import SigningKey, new_secret_key, read_or_create
from .limits import init_body_limit
from .oauth import IdpAuthorizationServer, provider_metadata
from .registration_limits import RegistrationLimits
from .request import IdpRequest
from .sessions import KeptSerializerSessions
from .settings import DEFAULT_SETTINGS_PATH, load_settings
from .throttle import LoginThrottle

__all__ = [
    "DEFAULT_COMBINEDREG_CONFIG",
    "DEFAULT_INSTANCE_PATH",
    "create_app",
    "settle_loaded_objects",
]

HERE = Path(__file__).parent
DEFAULT_INSTANCE_PATH = HERE / "instance"
DEFAULT_COMBINEDREG_CONFIG = HERE / "combinedreg.toml"
DEFAULT_DIRECTORY = HERE / "directory.toml"
DEFAULT_ISSUER = "http://localhost:5000"
#: HSTS of the demo on localhost, as combinedreg.toml's [web] hsts_max_age
DEMO_HSTS_MAX_AGE = 300
#: the middleware's Flask extension: one per process, init_app per app the factory makes
combinedreg = FlaskCombinedRegistration()


def _mount_middleware(
    app: Flask,
    combinedreg_config: Any,
    directory: TomlDirectory,
    clock: Clock,
    server: IdpAuthorizationServer,
    delivery: Delivery | None = None,
) -> Registration | None:
    """The integration: a few lines in any Flask host (plus the three calls and the
    authorization endpoint's two in host.py)."""
    if combinedreg_config is None:
        return None
    # init_app wraps app.wsgi_app and registers app.extensions["combinedreg"] (docs/frameworks.md)
    reg = combinedreg.init_app(
        app,
        config=combinedreg_config,
        directory=directory,
        clock=clock,
        # After a self-service password reset, the IdP's own sessions of that user end too.
        on_password_reset=lambda user_id: directory.end_sessions(user_id, int(clock.now())),
        # How the middleware answers a relying party itself (prompt=none, a cancelled sign-in).
        authorization=AuthlibEndpoint(app, server),
        # None: the providers the config names; the demo's outbox passes its own (outbox.py).
        delivery=delivery,
    )
    registration: Registration = reg
    return registration


def _acr_values(combinedreg_config: Any) -> tuple[str, ...]:
    acr = getattr(combinedreg_config, "acr", None)
    if acr is None:
        return ()
    return (acr.password, acr.mfa, acr.phishing_resistant)


def create_app(
    *,
    instance_path: str | os.PathLike[str] | None = None,
    issuer: str | None = None,
    combinedreg_config: Any = DEFAULT_COMBINEDREG_CONFIG,
    clock: Clock | None = None,
    settings_path: str | os.PathLike[str] | None = None,
    directory_path: str | os.PathLike[str] | None = None,
    delivery: Delivery | None = None,
) -> Flask:
    """Build the IdP.

    ``combinedreg_config`` is a path to the middleware's TOML file, an already loaded
    ``oidc_combinedreg`` config, or None to run the OpenID provider without the middleware.
    The issuer is published exactly as given (no trailing slash).
    """
    issuer = (issuer or os.environ.get("EXAMPLE_IDP_ISSUER") or DEFAULT_ISSUER).rstrip("/")
    if issuer.startswith("http:"):
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    clock = clock or SystemClock()
    instance = Path(instance_path or DEFAULT_INSTANCE_PATH).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(instance))
    app.request_class = IdpRequest  # its cookies without a walk of the environ (request.py)
    app.secret_key = read_or_create(instance / "secret-key", new_secret_key)
    app.session_interface = KeptSerializerSessions()
    secure = issuer.startswith("https:")
    settings = load_settings(Path(settings_path or DEFAULT_SETTINGS_PATH), issuer=issuer)
    app.config.update(
        SESSION_COOKIE_NAME="idp_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_SECURE=secure,
        OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": settings.access_token_lifetime},
    )
    db = Database(instance / "idp.sqlite3")
    directory = TomlDirectory(
        Path(directory_path or DEFAULT_DIRECTORY), db, settings.password_hash.hasher()
    )
    if isinstance(combinedreg_config, (str, os.PathLike)):
        from oidc_combinedreg import load_config

        combinedreg_config = load_config(combinedreg_config)  # ConfigError lists every problem
    clients = ClientStore(db, {c.client_id: c for c in settings.clients})
    server = IdpAuthorizationServer(
        app,
        issuer=issuer,
        clients=clients,
        codes=CodeStore(db, clock, settings.code_lifetime),
        tokens=TokenStore(db, clock),
        directory=directory,
        signing_key=SigningKey(instance / "signing-key.jwk.json"),
        clock=clock,
        id_token_lifetime=settings.id_token_lifetime,
        metadata=provider_metadata(issuer, _acr_values(combinedreg_config)),
        pushed=PushedRequests(db, clock, settings.par),
        client_auth=ClientAuthLimits(
            db,
            clock,
            settings.client_auth,
            known=lambda client_id: clients.get(client_id) is not None,
        ),
    )
    server.register_logout(end_sign_in, RegistrationLimits(db, clock, settings.registration))
    app.extensions["example_idp"] = Idp(
        issuer=issuer,
        settings=settings,
        directory=directory,
        server=server,
        throttle=LoginThrottle(
            db, clock, allowed=settings.login_failures_allowed, window=settings.login_window
        ),
        clock=clock,
        registration=_mount_middleware(app, combinedreg_config, directory, clock, server, delivery),
    )
    _init_login(app, directory)
    init_csrf(app, secure=secure)
    _register_views(app)
    init_body_limit(app)
    # Outermost: the IdP's own pages (login, TAP login, home, sign-out) get the middleware's
    # header set (no framing, no caching, nosniff, no referrer; one source, web/headers.py), and
    # a response to an https request gets Secure on every cookie and HSTS, whatever the issuer.
    # Without the middleware, its config's short demo HSTS too (combinedreg.toml says why).
    hsts = None if combinedreg_config is not None else DEMO_HSTS_MAX_AGE
    # Around the middleware too: its guard and the host's user loader read a user's row once
    # per request (directory.py, decision 204).
    app.wsgi_app = SecurityHeaders(  # type: ignore[method-assign]
        RequestRows(app.wsgi_app), combinedreg_config, hsts_max_age=hsts
    )
    return app


def _init_login(app: Flask, directory: TomlDirectory) -> None:
    # Templates get Flask-Login's current_user proxy, not the user it loads: Flask-Login's own
    # context processor loaded the user (session protection's hash, the loader) for every page
    # rendered, the login page of a signed-out browser included; the proxy loads it on use.
    manager = LoginManager(app, add_context_processor=False)
    manager.login_view = "login.login"
    app.context_processor(lambda: {"current_user": current_user})

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load_user(user_id: str) -> LoginUser | None:
        user, ended = directory.get_session_user(user_id)  # one query, every signed-in request
        if ended is not None and session.get(AUTH_TIME_KEY, 0) <= ended:
            return None  # signed in before the password was reset
        return LoginUser(user) if user is not None else None


def settle_loaded_objects() -> None:
    """Once the application is made, in the process that serves it (a gunicorn worker): what
    exists now (modules, the app, its config, templates: some 64,000 objects) lives as long as
    the process, so it is moved out of the cyclic collector's generations (``gc.freeze``).

    Python's full collection walks every object it tracks: here 30-60 ms, every couple of
    thousand requests of a sign-in's mix, with the caches the walk empties. Frozen objects are
    never walked; a request's own garbage is collected as before. The Python documentation
    recommends it for pre-fork servers: with gunicorn's ``--preload``, call it in the arbiter
    before the workers are forked (docs/deploy.md). Not in ``create_app``: a process that makes
    many apps (the tests) would keep every one of them."""
    gc.freeze()


def _register_views(app: Flask) -> None:
    from . import demo_rp, login, oidc_views

    app.register_blueprint(login.bp)
    app.register_blueprint(oidc_views.bp)
    app.register_blueprint(demo_rp.bp)

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(exc: StoreUnavailable) -> ResponseReturnValue:
        # The middleware's store is down while the IdP tells it about a sign-in: fail closed, and
        # say so clearly, as its own pages do (503, and when to try again: web/errors.py).
        text = "The security service is unavailable. Nothing was changed; try again in a minute."
        page = render_template("example_idp/error.html", error="unavailable", text=text)
        return page, 503, {"Retry-After": "30"}

"""Flask: the middleware as an extension in the ``init_app`` style (app factories).

::

    from oidc_combinedreg.integrations.flask import FlaskCombinedRegistration

    combinedreg = FlaskCombinedRegistration()          # module level, no app yet

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["COMBINEDREG_CONFIG"] = "combinedreg.toml"   # or a loaded Config
        combinedreg.init_app(app, directory=MyDirectory(), authorization=MyEndpoint())
        return app

    # in a view (the current request's environ is used):
    combinedreg.password_verified(user.id)
    result = combinedreg.sign_in_result()

``init_app`` wraps ``app.wsgi_app`` (never ``app`` itself: Flask's ``app`` object is not what the
server calls once other middleware is added) and registers the middleware as
``app.extensions["combinedreg"]``; the helpers find it through ``current_app``, so one extension
object serves every app the factory makes. Flask is imported only when a helper runs.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING, Any

from ..config.model import Config

if TYPE_CHECKING:
    from flask import Flask

    from ..authorization import AuthorizationEndpoint
    from ..clock import Clock
    from ..delivery.base import Delivery
    from ..directory import Directory
    from ..middleware import CombinedRegistration
    from ..signin import SignInResult, SignInState
    from ..store.base import Store

__all__ = ["CONFIG_KEY", "EXTENSION_KEY", "FlaskCombinedRegistration"]

#: ``app.extensions`` key of the mounted middleware
EXTENSION_KEY = "combinedreg"
#: ``app.config`` key read when ``init_app`` gets no ``config=``: a path or a loaded Config
CONFIG_KEY = "COMBINEDREG_CONFIG"


class FlaskCombinedRegistration:
    """One object per process; ``init_app`` mounts a middleware on each app it is given."""

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        if app is not None:
            self.init_app(app, **options)

    def init_app(
        self,
        app: Flask,
        *,
        directory: Directory,
        authorization: AuthorizationEndpoint,
        config: Config | str | PathLike[str] | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
        delivery: Delivery | None = None,
        on_password_reset: Callable[[str], None] | None = None,
    ) -> CombinedRegistration:
        """Mount the middleware on ``app.wsgi_app`` and register it; returns it."""
        from ..middleware import CombinedRegistration

        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"oidc_combinedreg is already mounted on {app.name!r} "
                f'(app.extensions["{EXTENSION_KEY}"]): call init_app once per app'
            )
        reg = CombinedRegistration(
            app.wsgi_app,
            config=_config(app, config),
            directory=directory,
            store=store,
            clock=clock,
            delivery=delivery,
            on_password_reset=on_password_reset,
            authorization=authorization,
        )
        app.wsgi_app = reg  # type: ignore[method-assign]
        app.extensions[EXTENSION_KEY] = reg
        return reg

    # -- the host calls, for the current request -------------------------------------------------

    @staticmethod
    def registration(app: Flask | None = None) -> CombinedRegistration:
        """The middleware mounted on ``app`` (default: ``current_app``)."""
        if app is None:
            from flask import current_app

            app = current_app
        try:
            reg: CombinedRegistration = app.extensions[EXTENSION_KEY]
        except KeyError:
            raise RuntimeError(
                f"oidc_combinedreg is not mounted on {app.name!r}: call init_app(app, ...) "
                "in the app factory"
            ) from None
        return reg

    def password_verified(self, user_id: str) -> None:
        self.registration().password_verified(_environ(), user_id)

    def verify_temporary_access_pass(self, user_id: str, code: str) -> bool:
        return self.registration().verify_temporary_access_pass(_environ(), user_id, code)

    def sign_in_result(self) -> SignInResult | None:
        return self.registration().sign_in_result(_environ())

    def current_sign_in(self) -> SignInState | None:
        return self.registration().current_sign_in(_environ())

    def sign_out(self) -> None:
        self.registration().sign_out(_environ())


def _environ() -> dict[str, Any]:
    from flask import request

    environ: dict[str, Any] = request.environ
    return environ


def _config(app: Flask, config: Config | str | PathLike[str] | None) -> Config:
    if config is None:
        config = app.config.get(CONFIG_KEY)
        if config is None:
            raise RuntimeError(
                f"init_app needs config=, or app.config[{CONFIG_KEY!r}] (a path or a Config)"
            )
    if isinstance(config, Config):
        return config
    from ..config import load_config

    return load_config(config)

"""oidc_combinedreg: combined security-info registration (MFA + SSPR) for WSGI OpenID providers.

Mount it in front of the host IdP::

    from oidc_combinedreg import CombinedRegistration, load_config

    app.wsgi_app = CombinedRegistration(app.wsgi_app, config=load_config("combinedreg.toml"),
                                        directory=MyDirectory(),
                                        authorization=MyAuthorizationEndpoint())

See docs/integration.md for the three calls the host makes and the ``AuthorizationEndpoint`` it
passes as ``authorization=``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .authorization import AuthorizationEndpoint
from .config import check_config, load_config, parse_config
from .config.model import Config
from .directory import Directory, DirectoryUser, PasswordRejected, PerUserMfa
from .exceptions import ConfigError
from .signin import SignInResult, SignInState
from .web.headers import SecurityHeaders, security_headers
from .web.oversized import Lingering, declared_too_large, linger_after_refusal

if TYPE_CHECKING:
    from .middleware import RESULT_KEY, CombinedRegistration
    from .web.context import MAX_BODY


def __getattr__(name: str) -> Any:
    # The middleware (and with it werkzeug) loads only when asked for, so importing the core
    # packages (oidc_combinedreg.policy, .conditional_access, .methods) stays free of web imports.
    if name in ("CombinedRegistration", "RESULT_KEY"):
        from . import middleware

        return getattr(middleware, name)
    if name == "MAX_BODY":  # the largest body the middleware reads (64 KiB); loads werkzeug
        from .web.context import MAX_BODY

        return MAX_BODY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_BODY",
    "Lingering",
    "RESULT_KEY",
    "AuthorizationEndpoint",
    "CombinedRegistration",
    "Config",
    "ConfigError",
    "Directory",
    "DirectoryUser",
    "PasswordRejected",
    "PerUserMfa",
    "SecurityHeaders",
    "SignInResult",
    "SignInState",
    "check_config",
    "declared_too_large",
    "linger_after_refusal",
    "load_config",
    "parse_config",
    "security_headers",
]

__version__ = "0.1.0"

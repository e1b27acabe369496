"""oidc_combinedreg: combined security-info registration (MFA + SSPR) for WSGI OpenID providers.

Mount it in front of the host IdP::

    from oidc_combinedreg import CombinedRegistration, load_config

    app.wsgi_app = CombinedRegistration(app.wsgi_app, config=load_config("combinedreg.toml"),
                                        directory=MyDirectory())

See docs/integration.md for the three calls the host makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import check_config, load_config, parse_config
from .config.model import Config
from .directory import Directory, DirectoryUser, PasswordRejected, PerUserMfa
from .exceptions import ConfigError
from .signin import SignInResult
from .web.headers import SecurityHeaders, security_headers

if TYPE_CHECKING:
    from .middleware import RESULT_KEY, CombinedRegistration


def __getattr__(name: str) -> Any:
    # The middleware (and with it werkzeug) loads only when asked for, so importing the core
    # packages (oidc_combinedreg.policy, .conditional_access, .methods) stays free of web imports.
    if name in ("CombinedRegistration", "RESULT_KEY"):
        from . import middleware

        return getattr(middleware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RESULT_KEY",
    "CombinedRegistration",
    "Config",
    "ConfigError",
    "Directory",
    "DirectoryUser",
    "PasswordRejected",
    "PerUserMfa",
    "SecurityHeaders",
    "SignInResult",
    "check_config",
    "load_config",
    "parse_config",
    "security_headers",
]

__version__ = "0.1.0"

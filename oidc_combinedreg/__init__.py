"""oidc_combinedreg: combined security-info registration (MFA + SSPR) for WSGI OpenID providers.

Mount it in front of the host IdP::

    from oidc_combinedreg import CombinedRegistration, load_config

    app.wsgi_app = CombinedRegistration(app.wsgi_app, config=load_config("combinedreg.toml"),
                                        directory=MyDirectory())

See docs/integration.md for the three calls the host makes.
"""

from __future__ import annotations

from .config import check_config, load_config, parse_config
from .config.model import Config
from .directory import Directory, DirectoryUser, PasswordRejected, PerUserMfa
from .exceptions import ConfigError
from .middleware import RESULT_KEY, CombinedRegistration
from .signin import SignInResult

__all__ = [
    "RESULT_KEY",
    "CombinedRegistration",
    "Config",
    "ConfigError",
    "Directory",
    "DirectoryUser",
    "PasswordRejected",
    "PerUserMfa",
    "SignInResult",
    "check_config",
    "load_config",
    "parse_config",
]

__version__ = "0.1.0"

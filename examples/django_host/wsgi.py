"""The WSGI application: Django inside, oidc-combinedreg outside."""

from __future__ import annotations

import tomllib
from pathlib import Path

from oidc_combinedreg import CombinedRegistration, parse_config

from .settings import HERE, configure

_registration: CombinedRegistration | None = None


def make_application(data_dir: Path) -> CombinedRegistration:
    """Configure Django with its files in ``data_dir`` and mount the middleware around it."""
    global _registration
    configure(data_dir)
    from django.core.wsgi import get_wsgi_application

    from .host import OAuthToolkitEndpoint, UserDirectory

    with open(HERE / "combinedreg.toml", "rb") as file:
        config = parse_config(tomllib.load(file), base_dir=data_dir)  # its files in data_dir too
    _registration = CombinedRegistration(
        get_wsgi_application(),
        config=config,
        directory=UserDirectory(),
        authorization=OAuthToolkitEndpoint(),
    )
    return _registration


def combinedreg() -> CombinedRegistration:
    """The mounted middleware, for the views' calls."""
    if _registration is None:
        raise RuntimeError("make_application() has not run")
    return _registration

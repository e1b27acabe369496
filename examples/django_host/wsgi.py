"""The WSGI application: Django inside, oidc-combinedreg outside."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from werkzeug.wsgi import ClosingIterator

from oidc_combinedreg import CombinedRegistration, parse_config

from .settings import HERE, configure

_registration: CombinedRegistration | None = None


def make_application(data_dir: Path) -> Any:
    """Configure Django with its files in ``data_dir``; the WSGI application to serve."""
    global _registration
    configure(data_dir)
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    from .host import OAuthToolkitEndpoint, UserDirectory

    with open(HERE / "combinedreg.toml", "rb") as file:
        config = parse_config(tomllib.load(file), base_dir=data_dir)  # its files in data_dir too
    _registration = CombinedRegistration(
        get_wsgi_application(),
        config=config,
        directory=UserDirectory(),
        authorization=OAuthToolkitEndpoint(),
    )
    registration = _registration

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # The middleware's own pages read Django's users outside Django's request cycle, so
        # Django does not close that database connection at the end: close it as Django would.
        return ClosingIterator(registration(environ, start_response), close_old_connections)

    return application


def combinedreg() -> CombinedRegistration:
    """The mounted middleware, for the views' calls."""
    if _registration is None:
        raise RuntimeError("make_application() has not run")
    return _registration

"""The example IdP for gunicorn in the benchmarks (benchmarks/example_idp_flow.py), as
``example_idp.wsgi`` builds it, but with the settings and directory files named by the
environment too: ``BENCH_IDP_INSTANCE``, ``BENCH_IDP_CONFIG`` (combinedreg.toml),
``BENCH_IDP_SETTINGS`` (idp.toml: the password hash's parameters), ``BENCH_IDP_DIRECTORY``.

``BENCH_IDP_WITHOUT_MIDDLEWARE=1``: the same IdP with the middleware's layer taken out of its
WSGI stack (the layers around it and the Flask app it wraps stay as they are): the reference of
the pass-through measure, a request the middleware does not own."""

from __future__ import annotations

import os
from typing import Any

from example_idp.app import create_app, settle_loaded_objects
from oidc_combinedreg.integrations.flask import EXTENSION_KEY

app = create_app(
    instance_path=os.environ["BENCH_IDP_INSTANCE"],
    issuer="http://127.0.0.1",
    combinedreg_config=os.environ["BENCH_IDP_CONFIG"],
    settings_path=os.environ["BENCH_IDP_SETTINGS"],
    directory_path=os.environ["BENCH_IDP_DIRECTORY"],
)


def without_middleware(layer: Any, middleware: Any) -> None:
    """Takes ``middleware`` out of the chain of ``.app`` attributes below ``layer``."""
    while layer is not None:
        inner = getattr(layer, "app", None)
        if inner is middleware:
            layer.app = middleware.app
            return
        layer = inner
    raise SystemExit("the middleware is not in the example IdP's WSGI stack")


if os.environ.get("BENCH_IDP_WITHOUT_MIDDLEWARE"):
    without_middleware(app.wsgi_app, app.extensions[EXTENSION_KEY])
settle_loaded_objects()  # as example_idp.wsgi

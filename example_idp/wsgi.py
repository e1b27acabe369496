"""WSGI entry for gunicorn: ``gunicorn --threads 4 'example_idp.wsgi:app'``.

Settings come from the environment: ``EXAMPLE_IDP_ISSUER`` (default http://localhost:5000),
``EXAMPLE_IDP_INSTANCE`` (default example_idp/instance), ``EXAMPLE_IDP_COMBINEDREG_CONFIG`` (the
middleware's TOML file, default example_idp/combinedreg.toml; point it at a copy with
``[storage] backend = "redis"`` to run several workers or hosts on one Redis, see docs/deploy.md).
Give gunicorn threads (or several workers): the demo relying party at /demo calls the IdP's own
token endpoint over HTTP.
"""

import os

from .app import DEFAULT_COMBINEDREG_CONFIG, create_app, settle_loaded_objects

app = create_app(
    instance_path=os.environ.get("EXAMPLE_IDP_INSTANCE"),
    combinedreg_config=os.environ.get("EXAMPLE_IDP_COMBINEDREG_CONFIG")
    or DEFAULT_COMBINEDREG_CONFIG,
)
settle_loaded_objects()  # what is loaded now lives as long as the worker: not walked by gc

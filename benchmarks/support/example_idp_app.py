"""The example IdP for gunicorn in the benchmarks (benchmarks/example_idp_flow.py), as
``example_idp.wsgi`` builds it, but with the settings and directory files named by the
environment too: ``BENCH_IDP_INSTANCE``, ``BENCH_IDP_CONFIG`` (combinedreg.toml),
``BENCH_IDP_SETTINGS`` (idp.toml: the password hash's parameters), ``BENCH_IDP_DIRECTORY``."""

from __future__ import annotations

import os

from example_idp.app import create_app, settle_loaded_objects

app = create_app(
    instance_path=os.environ["BENCH_IDP_INSTANCE"],
    issuer="http://127.0.0.1",
    combinedreg_config=os.environ["BENCH_IDP_CONFIG"],
    settings_path=os.environ["BENCH_IDP_SETTINGS"],
    directory_path=os.environ["BENCH_IDP_DIRECTORY"],
)
settle_loaded_objects()  # as example_idp.wsgi

"""The reference of ``make bench``'s pass-through measure (benchmarks/example_idp_flow.py,
``passthrough``): the example IdP as the benchmark serves it, once as is and once with
``BENCH_IDP_WITHOUT_MIDDLEWARE`` (benchmarks/support/example_idp_app.py). The reference must be
the same host without the middleware, or the ratio measures something else."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

import example_idp.app
from oidc_combinedreg.wiring import SEEN_KEY

ROOT = Path(__file__).resolve().parents[2]
BENCH_APP = ROOT / "benchmarks" / "support" / "example_idp_app.py"


def _bench_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, without: bool) -> Any:
    config = shutil.copy(ROOT / "example_idp" / "combinedreg.toml", tmp_path / "combinedreg.toml")
    monkeypatch.setenv("BENCH_IDP_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("BENCH_IDP_CONFIG", str(config))
    monkeypatch.setenv("BENCH_IDP_SETTINGS", str(ROOT / "example_idp" / "idp.toml"))
    monkeypatch.setenv("BENCH_IDP_DIRECTORY", str(ROOT / "example_idp" / "directory.toml"))
    if without:
        monkeypatch.setenv("BENCH_IDP_WITHOUT_MIDDLEWARE", "1")
    else:
        monkeypatch.delenv("BENCH_IDP_WITHOUT_MIDDLEWARE", raising=False)
    # gc.freeze() is for a served worker, not for the rest of this test session
    monkeypatch.setattr(example_idp.app, "settle_loaded_objects", lambda: None)
    return runpy.run_path(str(BENCH_APP))["app"]


def _get(app: Any, path: str) -> tuple[str, dict[str, Any]]:
    environ = EnvironBuilder(path=path, base_url="http://127.0.0.1").get_environ()
    statuses: list[str] = []
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    return statuses[0], environ


@pytest.mark.parametrize("without", [False, True])
def test_the_host_page_is_served_the_same_with_or_without_the_middleware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, without: bool
) -> None:
    app = _bench_app(tmp_path, monkeypatch, without=without)
    status, environ = _get(app, "/.well-known/openid-configuration")
    assert status == "200 OK"
    # The middleware marks every request it sees (wiring.py): only the measured IdP's.
    assert (SEEN_KEY in environ) is not without


def test_without_the_middleware_its_pages_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _get(_bench_app(tmp_path, monkeypatch, without=False), "/security-info/")[0] != (
        "404 NOT FOUND"
    )
    other = tmp_path / "other"
    other.mkdir()
    assert _get(_bench_app(other, monkeypatch, without=True), "/security-info/")[0] == (
        "404 NOT FOUND"
    )

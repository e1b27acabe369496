"""A host's ``SecurityHeaders`` around the middleware (the example IdP's set-up) leaves the
middleware's own pages as the middleware made them: its web app applied the same header set with
the same config (``PAGE_HEADERS_APPLIED``), so the wrapper adds nothing and merges nothing,
over http and https; a page it did not make (a static file) still gets the set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
SET = ("Cache-Control", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
       "Content-Security-Policy")  # fmt: skip


def make_idp(tmp_path: Path) -> FlaskClient:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    return create_app(instance_path=tmp_path / "instance", combinedreg_config=config).test_client()


@pytest.mark.parametrize("base_url", ["http://localhost", "https://localhost"])
def test_a_middleware_page_has_each_header_once(tmp_path: Path, base_url: str) -> None:
    client = make_idp(tmp_path)
    response = client.get("/security-info/reset", base_url=base_url)
    assert response.status_code == 200
    for name in SET:
        assert len(response.headers.getlist(name)) == 1, name
    hsts = response.headers.getlist("Strict-Transport-Security")
    assert hsts == (["max-age=300"] if base_url.startswith("https") else [])
    cookies = response.headers.getlist("Set-Cookie")
    assert all("; Secure" in c for c in cookies) or not base_url.startswith("https"), cookies


def test_a_static_file_still_gets_the_set_from_the_wrapper(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    response = client.get("/security-info/static/combinedreg.css", base_url="https://localhost")
    assert response.status_code == 200
    assert response.headers.get("X-Frame-Options") == "DENY"  # the wrapper's: static has none
    assert response.headers.getlist("Strict-Transport-Security") == ["max-age=300"]

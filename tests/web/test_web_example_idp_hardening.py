"""The example IdP's own pages, as integrators copy them: the middleware's security headers
(one source: ``CombinedRegistration.security_headers``), ``Secure`` cookies and HSTS on https,
and the store-down answer its docs promise (503 with ``Retry-After``)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


def make_idp(tmp_path: Path, extra: str = "") -> FlaskClient:
    config = tmp_path / "combinedreg.toml"
    shutil.copy(EXAMPLE_IDP / "combinedreg.toml", config)
    if extra:
        config.write_text(config.read_text() + extra)
    return create_app(instance_path=tmp_path / "instance", combinedreg_config=config).test_client()


def csrf_form(client: FlaskClient, page: str = "/login", **fields: str) -> dict[str, str]:
    html = client.get(page).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    return {"csrf_token": token.group(1), **fields}


# -- the store down: 503 and Retry-After, as the middleware's pages and docs/deploy.md say --------


def test_the_login_answers_503_with_retry_after_when_the_store_is_down(tmp_path: Path) -> None:
    # Shipped config, but a short busy timeout: another writer holds the database's write lock.
    client = make_idp(tmp_path, "")
    config = tmp_path / "combinedreg.toml"
    config.write_text(
        config.read_text().replace(
            'path = "instance/combinedreg.sqlite3"',
            'path = "instance/combinedreg.sqlite3"\nbusy_timeout_ms = 100',
        )
    )
    client = create_app(
        instance_path=tmp_path / "instance", combinedreg_config=config
    ).test_client()
    form = csrf_form(client, username="alice", password="alice")
    holder = sqlite3.connect(tmp_path / "instance" / "combinedreg.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        response = client.post("/login", data=form)
    finally:
        holder.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "unavailable" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers or "idp_session" not in str(
        response.headers.getlist("Set-Cookie")
    )

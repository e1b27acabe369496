"""The example IdP's "Use a Temporary Access Pass" option, through Flask's test client."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from example_idp import create_app
from oidc_combinedreg.crypto import fast_hasher_for_tests

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@pytest.fixture
def idp(tmp_path: Path) -> FlaskClient:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=config)
    app.extensions["combinedreg"].admin.tap.hasher = fast_hasher_for_tests()
    return app.test_client()


def _form(client: FlaskClient) -> str:
    html = client.get("/login/tap?next=/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None and "Temporary Access Pass" in html
    return token.group(1)


def test_the_login_page_links_to_the_tap_option(idp: FlaskClient) -> None:
    assert 'href="/login/tap?next=' in idp.get("/login").get_data(as_text=True)


def test_a_pass_signs_in_once_and_a_wrong_one_does_not(idp: FlaskClient) -> None:
    app = idp.application
    reg = app.extensions["combinedreg"]
    tap = reg.admin.issue_tap("alice", minutes=60, one_time=True, actor="test", ip=None)
    token = _form(idp)
    wrong = idp.post(
        "/login/tap",
        data={"csrf_token": token, "username": "alice", "pass": "AAAA-AAAA-AAAA-AAAA", "next": "/"},
    )
    assert wrong.status_code == 401
    ok = idp.post(
        "/login/tap", data={"csrf_token": token, "username": "alice", "pass": tap.code, "next": "/"}
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert "combinedreg=" in ok.headers.get("Set-Cookie", "") or any(
        "combinedreg" in c for c in ok.headers.getlist("Set-Cookie")
    )
    again = idp.post(
        "/login/tap",
        data={"csrf_token": _form(idp), "username": "alice", "pass": tap.code, "next": "/"},
    )
    assert again.status_code == 401
    reasons = [e.detail.get("reason") for e in reg.store.list_audit(event_prefix="tap.")]
    assert reasons == [
        "used",
        None,
        "wrong_code",
        None,
    ]  # newest first: failed, used, failed, issued


def test_forged_csrf_and_state_values_beyond_ascii_are_refused_not_errors(
    idp: FlaskClient,
) -> None:
    """hmac.compare_digest raises on str with characters beyond ASCII: the example IdP compares
    bytes, so such a value is a refusal (SECURITY.md case 51), never a 500."""
    _form(idp)  # the CSRF cookie
    r = idp.post("/login", data={"csrf_token": "é" * 64, "username": "alice", "password": "x"})
    assert r.status_code in (400, 403)
    r = idp.get("/demo/callback?state=%C3%A9&code=x")
    assert r.status_code in (302, 303, 400)

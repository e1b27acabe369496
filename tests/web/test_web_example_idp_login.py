"""Where the example hosts send the user after the login: the example IdP's ``safe_next``
(through Flask's test client) and the plain WSGI host's check."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from webtest import Browser

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@pytest.fixture
def idp(tmp_path: Path) -> FlaskClient:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    return create_app(instance_path=tmp_path / "instance", combinedreg_config=config).test_client()


def _login(client: FlaskClient, next_url: str) -> str:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {"csrf_token": token.group(1), "username": "breakglass", "password": "breakglass",
            "next": next_url}  # fmt: skip
    r = client.post("/login", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return r.headers["Location"]


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/authorize?client_id=demo", "/authorize?client_id=demo"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/authorize\r\nSet-Cookie: evil=1", "/"),  # a header of its own: not a 500, not a header
        ("/authorize\tx", "/"),
        ("/ spaced", "/"),
        ("/no\xa0break", "/"),  # white space beyond ASCII
        ("/line\u2028separator", "/"),
    ],
)
def test_after_the_login_only_a_same_site_path_is_followed(
    idp: FlaskClient, next_url: str, expected: str
) -> None:
    assert _login(idp, next_url) == expected


def test_the_plain_host_follows_only_its_authorization_endpoint(
    make_browser: Callable[..., Browser],
) -> None:
    """examples/plain_wsgi_host.py, the other host people copy: same rule, its own code. (alice
    is exempt from registration here: a sign-in that needs a step would be sent straight to its
    page instead of /authorize, decision 226.)"""
    browser = make_browser(groups={"alice": frozenset({"break-glass"})})
    for next_url, expected in [
        ("/authorize?client_id=demo", "/authorize?client_id=demo"),
        ("/authorize\r\nSet-Cookie: evil=1", "/"),
        ("https://evil.example/authorize", "/"),
    ]:
        r = browser.post(
            "/login?" + urlencode({"next": next_url}),
            data={"username": "alice", "password": "alice-password"},
        )
        assert r.status_code == 303 and r.headers["Location"] == expected

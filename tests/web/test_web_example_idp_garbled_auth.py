"""An Authorization header that is not ASCII (gunicorn passes header bytes on as latin-1) gets
the endpoint's own refusal, never a 500: Authlib's Basic parsing raised on it
(``base64.b64decode`` of a non-ASCII string is a ValueError it does not catch)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from idp_client import make_idp, registered

from oidc_combinedreg.clock import FrozenClock

#: the bytes 0xff 0xfe after "Basic ", as a WSGI server hands them on (latin-1)
GARBLED = {"Authorization": "Basic \xff\xfe"}


@pytest.fixture
def idp(tmp_path: Path) -> FlaskClient:
    return make_idp(tmp_path, FrozenClock(time.time()))


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/token", {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"}),
        ("/token", {"grant_type": "authorization_code", "code": "x", "client_secret": "s"}),
        ("/par", {"response_type": "code", "redirect_uri": "https://rp.example/cb"}),
    ],
)
def test_client_authentication_refuses_a_garbled_basic_header(
    idp: FlaskClient, path: str, form: dict[str, str]
) -> None:
    client = registered(idp)
    response = idp.post(path, data={**form, "client_id": client["client_id"]}, headers=GARBLED)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")  # RFC 6749 5.2


@pytest.mark.parametrize("scheme", ["Basic", "Bearer"])
def test_userinfo_refuses_a_garbled_authorization_header(idp: FlaskClient, scheme: str) -> None:
    response = idp.get("/userinfo", headers={"Authorization": f"{scheme} \xff\xfe"})
    assert response.status_code == 401, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"redirect_uris": ["https://rp.example/\\ud800"]}', id="a lone surrogate"),
        pytest.param(
            '{"redirect_uris": ["https://rp.example/cb"], "client_name": "x\\udfff"}',
            id="a lone surrogate in the name",
        ),
        pytest.param('{"a":' * 5000 + "1" + "}" * 5000, id="nested past the parser's depth"),
    ],
)
def test_registration_refuses_a_json_body_that_is_no_text(idp: FlaskClient, body: str) -> None:
    # Valid JSON, or too deep to parse: a 400 invalid_request (RFC 7591 3.1), never a stored
    # client whose name or address no page can encode, nor a 500.
    idp.application.testing = False  # an exception would show as the 500 a browser gets
    response = idp.post("/register", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.get_json()["error"] == "invalid_request"

"""The example IdP's open client registration (RFC 7591, OIDC Dynamic Client Registration) against a
flood: each registration stores a client, so registrations are counted per address over a window
(429 with ``Retry-After``) and the registered clients are capped in total (``[registration]``,
decision 191). Refused registrations store nothing; the clients listed in idp.toml do not count."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from idp_client import REDIRECT_URI, pkce
from test_web_token_limits import settings_file
from werkzeug.test import TestResponse

from example_idp import create_app
from example_idp.settings import load_settings
from oidc_combinedreg.clock import FrozenClock

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


def make_idp(tmp_path: Path, clock: FrozenClock, **limits: int) -> FlaskClient:
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=None, clock=clock,
                     settings_path=settings_file(tmp_path, "registration", **limits))  # fmt: skip
    return app.test_client()


def register(idp: FlaskClient, ip: str = OWNER) -> TestResponse:
    return idp.post("/register", json={"redirect_uris": [REDIRECT_URI]},
                    environ_base={"REMOTE_ADDR": ip})  # fmt: skip


def stored(tmp_path: Path) -> int:
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        count: int = conn.execute("SELECT count(*) FROM clients").fetchone()[0]
        return count


def test_registrations_from_one_address_are_limited_per_window(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, address_registrations=3, window=3600)
    for _ in range(3):
        assert register(idp, STRANGER).status_code == 201
    for _ in range(10):
        refused = register(idp, STRANGER)
        assert refused.status_code == 429, refused.get_data(as_text=True)
        # RFC 7591 3.2.2: a JSON object with error and error_description, not cached
        body = refused.get_json()
        assert body["error"] == "temporarily_unavailable"
        assert "3600" in body["error_description"]
        assert refused.headers["Cache-Control"] == "no-store"
        assert 0 < int(refused.headers["Retry-After"]) <= 3601
    assert stored(tmp_path) == 3  # nothing refused was stored
    assert register(idp, OWNER).status_code == 201  # another address: untouched
    clock.advance(3601)
    assert register(idp, STRANGER).status_code == 201


def test_the_registered_clients_are_capped_in_total(tmp_path: Path, clock: FrozenClock) -> None:
    idp = make_idp(tmp_path, clock, max_clients=3)
    for n in range(3):
        assert register(idp, f"203.0.113.{n}").status_code == 201
    full = register(idp, OWNER)
    assert full.status_code == 400, full.get_data(as_text=True)  # RFC 7591 3.2.2
    assert full.get_json()["error"] == "access_denied"  # as a closed registration
    assert "3" in full.get_json()["error_description"]
    assert full.headers["Cache-Control"] == "no-store"
    assert stored(tmp_path) == 3
    # The listed client (demo-rp, idp.toml) is not in the table: it still signs users in.
    _, challenge = pkce()
    params = {"client_id": "demo-rp", "response_type": "code", "scope": "openid",
              "redirect_uri": "http://localhost:5000/demo/callback", "code_challenge": challenge,
              "code_challenge_method": "S256"}  # fmt: skip
    started = idp.get("/authorize?" + urlencode(params))
    assert started.status_code == 200 and 'name="password"' in started.get_data(as_text=True)


def test_an_invalid_registration_is_not_counted(tmp_path: Path, clock: FrozenClock) -> None:
    idp = make_idp(tmp_path, clock, address_registrations=2)
    for _ in range(5):
        bad = idp.post("/register", json={"redirect_uris": ["not a uri"]},
                       environ_base={"REMOTE_ADDR": OWNER})  # fmt: skip
        assert bad.status_code == 400
    assert register(idp).status_code == 201


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("window = 0", "registration.window"),
        ("address_registrations = -1", "registration.address_registrations"),
        ("max_clients = 'many'", "registration.max_clients"),
        ("open = 1", "registration.open"),
        ("per_ip = 3", "registration: unknown keys ['per_ip']"),
    ],
)
def test_registration_settings_are_checked(tmp_path: Path, line: str, message: str) -> None:
    settings = tmp_path / "idp.toml"
    settings.write_text(f"[registration]\n{line}\n")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(settings, issuer="http://localhost:5000")

"""The example IdP's /par (RFC 9126) under a flood: its own limits per client and per address, a cap
on the pending requests each client may hold, and pushed requests that live exactly their
``expires_in`` (RFC 9126 2.2). A flood never grows storage without bound and never refuses another
client (docs/security.md, docs/oidc.md "RFC 9126")."""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from idp_client import EXAMPLE_IDP, authorize_params, basic, pkce, registered
from werkzeug.test import TestResponse

from example_idp import create_app
from example_idp.authz_requests import INTERACTION_LIFETIME, PUSH_LIFETIME
from example_idp.settings import load_settings
from oidc_combinedreg.clock import FrozenClock

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


def make_idp(tmp_path: Path, clock: FrozenClock, **par: int) -> FlaskClient:
    settings = tmp_path / "idp.toml"
    before, table = (EXAMPLE_IDP / "idp.toml").read_text().split("\n[par]\n")
    for key, value in par.items():  # every [par] key is in the shipped file's table
        table, changed = re.subn(rf"^{key} = \d+", f"{key} = {value}", table, count=1, flags=re.M)
        assert changed, key
    settings.write_text(f"{before}\n[par]\n{table}")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=None, clock=clock,
                     settings_path=settings)  # fmt: skip
    return app.test_client()


def stored(tmp_path: Path) -> int:
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        count: int = conn.execute("SELECT count(*) FROM pushed_requests").fetchone()[0]
        return count


def push(
    idp: FlaskClient, reg: dict[str, Any], ip: str = OWNER, secret: str | None = None
) -> TestResponse:
    _, challenge = pkce()
    params = authorize_params(reg["client_id"], code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    headers = {}
    if "client_secret" in reg:
        headers["Authorization"] = basic({**reg, "client_secret": secret or reg["client_secret"]})
    return idp.post("/par", data=params, headers=headers, environ_base={"REMOTE_ADDR": ip})


def assert_refused(response: TestResponse) -> int:
    """RFC 9126 2.3: 429, the token endpoint's JSON error format, and when to come back."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers
    wait = int(response.headers["Retry-After"])
    assert wait > 0
    return wait


def test_a_flooding_client_is_capped_and_another_client_still_pushes(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, pending_per_client=5, client_pushes=1000)
    flooder, other = registered(idp), registered(idp)
    for _ in range(5):
        assert push(idp, flooder).status_code == 201
    for _ in range(20):
        wait = assert_refused(push(idp, flooder))
        assert wait <= PUSH_LIFETIME + 1  # the oldest pending request's expiry
    assert stored(tmp_path) == 5  # nothing refused was kept
    assert push(idp, other).status_code == 201  # same address, another client: untouched
    clock.advance(PUSH_LIFETIME + 1)
    assert push(idp, flooder).status_code == 201  # its pending ones expired
    assert stored(tmp_path) == 1  # and were purged, the other client's too


def test_a_client_over_its_rate_is_refused_for_the_window_alone(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, client_pushes=4, window=60)
    flooder, other = registered(idp), registered(idp)
    for _ in range(4):
        assert push(idp, flooder).status_code == 201
    assert assert_refused(push(idp, flooder)) <= 61
    assert push(idp, other).status_code == 201
    clock.advance(61)
    assert push(idp, flooder).status_code == 201


def test_wrong_secrets_from_one_address_refuse_that_address_not_the_client(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A stranger naming a confidential client with wrong secrets moves only its own address's
    counter: the client (which authenticates) keeps pushing, from anywhere."""
    idp = make_idp(tmp_path, clock, address_pushes=3)
    victim = registered(idp)
    for _ in range(3):
        assert push(idp, victim, ip=STRANGER, secret="guess").status_code == 401
    for _ in range(10):
        assert_refused(push(idp, victim, ip=STRANGER, secret="guess"))
    assert push(idp, victim, ip=OWNER).status_code == 201
    assert stored(tmp_path) == 1


def test_a_stranger_pushing_as_a_public_client_is_refused_alone(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A public client authenticates by its client_id only (RFC 9126 2.1): anyone can push as it,
    so its rate and its pending cap count per address, and a flood fills the flooder's share."""
    idp = make_idp(tmp_path, clock, address_pushes=1000, pending_per_client=5)
    public = registered(idp, token_endpoint_auth_method="none")
    for _ in range(5):
        assert push(idp, public, ip=STRANGER).status_code == 201
    assert_refused(push(idp, public, ip=STRANGER))
    assert push(idp, public, ip=OWNER).status_code == 201
    assert stored(tmp_path) == 6

    (tmp_path / "rate").mkdir()
    idp2 = make_idp(tmp_path / "rate", clock, address_pushes=3)
    public2 = registered(idp2, token_endpoint_auth_method="none")
    for _ in range(3):
        assert push(idp2, public2, ip=STRANGER).status_code == 201
    assert_refused(push(idp2, public2, ip=STRANGER))
    assert push(idp2, public2, ip=OWNER).status_code == 201
    # a confidential client behind the flooding address (a shared NAT) counts on its own
    assert push(idp2, registered(idp2), ip=STRANGER).status_code == 201


def test_a_pushed_request_lives_its_expires_in_and_is_purged_then(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    response = push(idp, reg)
    assert response.get_json()["expires_in"] == PUSH_LIFETIME
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        (expires_at,) = conn.execute("SELECT expires_at FROM pushed_requests").fetchone()
    assert expires_at == int(clock.now()) + PUSH_LIFETIME
    clock.advance(PUSH_LIFETIME + 1)
    push(idp, reg)
    assert stored(tmp_path) == 1  # the expired one is gone, not kept for a day


def test_a_started_request_is_kept_for_the_interaction_then_purged(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    request_uri = push(idp, reg).get_json()["request_uri"]
    page = idp.get("/authorize", query_string={"client_id": reg["client_id"],
                                                "request_uri": request_uri})  # fmt: skip
    assert page.status_code in (200, 302)
    clock.advance(PUSH_LIFETIME + 1)
    push(idp, reg)
    assert stored(tmp_path) == 2  # started: the user is still signing in
    clock.advance(INTERACTION_LIFETIME)
    push(idp, reg)
    assert stored(tmp_path) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("window = 0", "par.window"),
        ("client_pushes = -1", "par.client_pushes"),
        ("address_pushes = 'many'", "par.address_pushes"),
        ("pending_per_client = 0", "par.pending_per_client"),
        ("per_client = 3", "par: unknown keys ['per_client']"),
    ],
)
def test_par_settings_are_checked(tmp_path: Path, line: str, message: str) -> None:
    settings = tmp_path / "idp.toml"
    settings.write_text(f"[par]\n{line}\n")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(settings, issuer="http://localhost:5000")


def test_a_database_of_an_older_build_gets_the_new_column(
    tmp_path: Path, clock: FrozenClock
) -> None:
    (tmp_path / "instance").mkdir()
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        conn.execute(
            "CREATE TABLE pushed_requests (uri_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL,"
            " params TEXT NOT NULL, expires_at INTEGER NOT NULL, started_at INTEGER,"
            " used INTEGER NOT NULL DEFAULT 0)"
        )
        conn.commit()
    idp = make_idp(tmp_path, clock)
    assert push(idp, registered(idp)).status_code == 201

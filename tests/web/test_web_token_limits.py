"""The example IdP's token endpoint against a stranger guessing a client's secret (RFC 6749 2.3.1:
an endpoint taking a client password "MUST protect" it "against brute force attacks"; 10.10).

Failed client authentications count per address and per client over a window (``[client_auth]``,
example_idp/client_auth.py, shared with /par): a wrong secret is answered ``invalid_client`` (RFC
6749 5.2) until a limit, then 429 with ``Retry-After``, before the secret is even compared. The
real client, at its own address, always gets its tokens: a stranger's guesses refuse the
stranger's addresses only (decision 190). The code stays single use throughout.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from idp_client import (
    EXAMPLE_IDP,
    REDIRECT_URI,
    authorize_params,
    basic,
    pkce,
    registered,
    signed_in_code,
)
from werkzeug.test import TestResponse

from example_idp import create_app
from example_idp.settings import load_settings
from oidc_combinedreg.clock import FrozenClock

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(time.time())


def settings_file(tmp_path: Path, table: str, **values: int) -> Path:
    """The shipped idp.toml with keys of one of its tables changed."""
    text = (EXAMPLE_IDP / "idp.toml").read_text()
    head, sep, rest = text.partition(f"\n[{table}]\n")
    assert sep, table
    for key, value in values.items():  # every key is in the shipped file's table
        rest, changed = re.subn(rf"^{key} = \d+", f"{key} = {value}", rest, count=1, flags=re.M)
        assert changed, key
    path = tmp_path / "idp.toml"
    path.write_text(head + sep + rest)
    return path


def make_idp(tmp_path: Path, clock: FrozenClock, **limits: int) -> FlaskClient:
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=None, clock=clock,
                     settings_path=settings_file(tmp_path, "client_auth", **limits))  # fmt: skip
    return app.test_client()


def token(
    idp: FlaskClient, reg: dict[str, Any], code: str = "x", verifier: str = "y", *,
    ip: str = OWNER, secret: str | None = None,
) -> TestResponse:  # fmt: skip
    return idp.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier},
        headers={"Authorization": basic({**reg, "client_secret": secret or reg["client_secret"]})},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip


def assert_wrong_secret(response: TestResponse) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client"  # RFC 6749 5.2


def assert_refused(response: TestResponse) -> int:
    """429 (RFC 6585 4), the token endpoint's JSON error format (RFC 6749 5.2), when to retry."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Cache-Control"] == "no-store"
    wait = int(response.headers["Retry-After"])
    assert wait > 0
    return wait


def test_wrong_secrets_from_one_address_refuse_that_address_and_the_client_gets_its_tokens(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock, address_failures=3, window=300)
    victim = registered(idp)
    code, verifier = signed_in_code(idp, victim["client_id"])
    for _ in range(3):
        assert_wrong_secret(token(idp, victim, code, verifier, ip=STRANGER, secret="guess"))
    for _ in range(20):
        assert (
            assert_refused(token(idp, victim, code, verifier, ip=STRANGER, secret="guess")) <= 301
        )
    # Refused before the secret is compared: the right one does not tell a good guess either,
    # and the refused request did not spend the code.
    assert_refused(token(idp, victim, code, verifier, ip=STRANGER))
    answer = token(idp, victim, code, verifier, ip=OWNER)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "access_token" in answer.get_json()
    clock.advance(301)  # windowed: nothing durable
    assert_wrong_secret(token(idp, victim, ip=STRANGER, secret="guess"))


def test_guessing_one_client_from_many_addresses_never_refuses_the_client(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """Past the client's limit over all addresses, every address that failed for it is refused;
    an address that never failed for it (the client's own) is not."""
    idp = make_idp(tmp_path, clock, client_failures=5, address_failures=100)
    victim = registered(idp)
    bots = [f"203.0.113.{n}" for n in range(1, 6)]
    for bot in bots:
        assert_wrong_secret(token(idp, victim, ip=bot, secret="guess"))
    for bot in bots:
        assert_refused(token(idp, victim, ip=bot, secret="guess"))
    newcomer = "203.0.113.99"  # its first guess is answered, the next one refused
    assert_wrong_secret(token(idp, victim, ip=newcomer, secret="guess"))
    assert_refused(token(idp, victim, ip=newcomer, secret="guess"))
    code, verifier = signed_in_code(idp, victim["client_id"])
    assert token(idp, victim, code, verifier, ip=OWNER).status_code == 200
    # Another client at a guessing address: its address is not over the address's limit.
    other = registered(idp)
    code, verifier = signed_in_code(idp, other["client_id"])
    assert token(idp, other, code, verifier, ip=bots[0]).status_code == 200


def test_wrong_secrets_at_par_count_on_the_same_counters(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """/par authenticates the client as /token does (RFC 9126 2.1): one set of counters, so the
    two endpoints do not give a guesser twice the tries."""
    idp = make_idp(tmp_path, clock, address_failures=3)
    victim = registered(idp)
    _, challenge = pkce()
    params = authorize_params(victim["client_id"], code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    wrong = {"Authorization": basic({**victim, "client_secret": "guess"})}
    for _ in range(3):
        pushed = idp.post(
            "/par", data=params, headers=wrong, environ_base={"REMOTE_ADDR": STRANGER}
        )
        assert pushed.status_code == 401
    assert_refused(token(idp, victim, ip=STRANGER, secret="guess"))
    refused = idp.post("/par", data=params, headers=wrong, environ_base={"REMOTE_ADDR": STRANGER})
    assert_refused(refused)


def test_a_code_stays_single_use_and_a_replay_revokes_its_token(
    tmp_path: Path, clock: FrozenClock
) -> None:
    idp = make_idp(tmp_path, clock)
    reg = registered(idp)
    code, verifier = signed_in_code(idp, reg["client_id"])
    first = token(idp, reg, code, verifier)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    assert idp.get("/userinfo", headers=bearer).status_code == 200
    replay = token(idp, reg, code, verifier)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert idp.get("/userinfo", headers=bearer).status_code == 401  # RFC 6749 4.1.2


def test_a_success_clears_the_clients_failures_at_that_address_only(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A client that mistyped its secret and then fixed it is not among the addresses refused
    when the client comes under attack; but a success never clears an address's own count, or a
    stranger could reset it with a client of its own between guesses."""
    idp = make_idp(tmp_path, clock, client_failures=3, address_failures=3)
    reg = registered(idp)
    for _ in range(2):
        assert_wrong_secret(token(idp, reg, secret="typo"))
    code, verifier = signed_in_code(idp, reg["client_id"])
    assert token(idp, reg, code, verifier).status_code == 200
    assert_wrong_secret(token(idp, reg, ip=STRANGER, secret="guess"))  # the client's third
    assert_refused(token(idp, reg, ip=STRANGER, secret="guess"))
    code, verifier = signed_in_code(idp, reg["client_id"])
    assert token(idp, reg, code, verifier).status_code == 200  # its address failed, then passed

    own = registered(idp)  # the stranger's own client, between its guesses
    victim = registered(idp)
    bot = "203.0.113.7"
    for _ in range(2):
        assert_wrong_secret(token(idp, victim, ip=bot, secret="guess"))
        code, verifier = signed_in_code(idp, own["client_id"])
        assert token(idp, own, code, verifier, ip=bot).status_code == 200
    assert_wrong_secret(token(idp, victim, ip=bot, secret="guess"))
    assert_refused(token(idp, victim, ip=bot, secret="guess"))
    assert_refused(token(idp, own, ip=bot))  # the address is refused, whatever it names


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("window = 0", "client_auth.window"),
        ("address_failures = -1", "client_auth.address_failures"),
        ("client_failures = 'many'", "client_auth.client_failures"),
        ("per_ip = 3", "client_auth: unknown keys ['per_ip']"),
    ],
)
def test_client_auth_settings_are_checked(tmp_path: Path, line: str, message: str) -> None:
    settings = tmp_path / "idp.toml"
    settings.write_text(f"[client_auth]\n{line}\n")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(settings, issuer="http://localhost:5000")


def test_a_database_of_an_older_build_counts_in_the_new_table(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """An older build's /par counters (par_counts) are dropped: a minute's counts, now kept with
    every other limit's in rate_counts."""
    (tmp_path / "instance").mkdir()
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        conn.execute("CREATE TABLE par_counts (key TEXT NOT NULL, at REAL NOT NULL)")
        conn.commit()
    idp = make_idp(tmp_path, clock, address_failures=1)
    victim = registered(idp)
    assert_wrong_secret(token(idp, victim, ip=STRANGER, secret="guess"))
    assert_refused(token(idp, victim, ip=STRANGER, secret="guess"))
    with closing(sqlite3.connect(tmp_path / "instance" / "idp.sqlite3")) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "par_counts" not in tables and "rate_counts" in tables


def test_a_request_without_a_secret_guesses_nothing_and_is_not_refused(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A public client authenticates by its client_id (RFC 6749 2.1): there is no secret to guess,
    so an address refused for wrong secrets (a shared NAT, the reverse proxy, the demo RP calling
    from the IdP's own machine) still exchanges a public client's code."""
    idp = make_idp(tmp_path, clock, address_failures=2)
    victim = registered(idp)
    for _ in range(2):
        assert_wrong_secret(token(idp, victim, ip=STRANGER, secret="guess"))
    assert_refused(token(idp, victim, ip=STRANGER, secret="guess"))
    public = registered(idp, token_endpoint_auth_method="none")
    code, verifier = signed_in_code(idp, public["client_id"])
    answer = idp.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier, "client_id": public["client_id"]},
        environ_base={"REMOTE_ADDR": STRANGER},
    )  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)

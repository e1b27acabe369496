"""The example IdP's password hashes (issue 22.3): argon2id with the parameters of idp.toml's
[password_hash] (default OWASP's minimum), remade at sign-in when the stored hash has others."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from flask.testing import FlaskClient
from idp_client import EXAMPLE_IDP, login

from example_idp import create_app
from example_idp.settings import DEFAULT_SETTINGS_PATH, PasswordHashSettings, load_settings

USER = "breakglass"


#: the directory file's hash: made with other parameters than any idp.toml here (8 MiB, t=1)
SEED_HASH = PasswordHasher(memory_cost=8192, time_cost=1, parallelism=1).hash(USER)


def _idp(tmp_path: Path, table: str = "") -> FlaskClient:
    settings = tmp_path / "idp.toml"
    settings.write_text(DEFAULT_SETTINGS_PATH.read_text().split("[password_hash]")[0] + table)
    users = tmp_path / "directory.toml"
    users.write_text(
        f'[[users]]\nid = "{USER}"\npassword_hash = "{SEED_HASH}"\ngroups = ["break-glass"]\n'
    )
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(instance_path=tmp_path / "instance", combinedreg_config=config,
                     settings_path=settings, directory_path=users)  # fmt: skip
    return app.test_client()


def _stored(tmp_path: Path, user: str = USER) -> str | None:
    with sqlite3.connect(tmp_path / "instance" / "idp.sqlite3") as conn:
        row = conn.execute(
            "SELECT password_hash FROM user_overrides WHERE user_id = ?", (user,)
        ).fetchone()
    return row[0] if row else None


def _params(encoded: str | None) -> tuple[int, int, int]:
    assert encoded is not None
    p = extract_parameters(encoded)
    return (p.memory_cost, p.time_cost, p.parallelism)


def test_the_shipped_settings_are_owasps_argon2id_minimum() -> None:
    settings = load_settings(DEFAULT_SETTINGS_PATH, issuer="https://idp.example")
    assert settings.password_hash == PasswordHashSettings()
    assert (settings.password_hash.memory_kib, settings.password_hash.time_cost,
            settings.password_hash.parallelism) == (19456, 2, 1)  # fmt: skip


def test_a_file_hash_is_remade_with_the_configured_parameters_at_sign_in(tmp_path: Path) -> None:
    client = _idp(tmp_path)
    assert _stored(tmp_path) is None  # the directory file's hash (8 MiB, t=1)
    login(client, "/", USER)
    # The old code kept verifying the file's hash, whatever its parameters, at every sign-in.
    assert _params(_stored(tmp_path)) == (19456, 2, 1)
    login(client.application.test_client(), "/", USER)  # the new hash verifies


def test_changed_parameters_take_effect_at_the_next_sign_in(tmp_path: Path) -> None:
    login(_idp(tmp_path), "/", USER)
    first = _stored(tmp_path)
    table = "[password_hash]\nmemory_kib = 12288\ntime_cost = 3\nparallelism = 1\n"
    client = _idp(tmp_path, table)
    login(client, "/", USER)
    assert _params(_stored(tmp_path)) == (12288, 3, 1)
    assert _stored(tmp_path) != first
    again = _stored(tmp_path)
    login(client, "/", USER)
    assert _stored(tmp_path) == again  # same parameters: not remade at every sign-in


def test_a_wrong_password_remakes_nothing(tmp_path: Path) -> None:
    client = _idp(tmp_path)
    html = client.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": token, "username": USER, "password": "wrong password", "next": "/"}
    assert client.post("/login", data=form).status_code == 401
    assert _stored(tmp_path) is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("memory_kb = 19456\n", "idp.toml: password_hash: unknown keys ['memory_kb']"),
        ("time_cost = 0\n", "idp.toml: password_hash.time_cost: expected a whole number of at least 1"),
        ("parallelism = 4\nmemory_kib = 16\n", "password_hash.memory_kib: expected at least 8 KiB per lane"),
        ('memory_kib = "19 MiB"\n', "password_hash.memory_kib: expected a whole number"),
    ],
)  # fmt: skip
def test_bad_parameters_stop_the_start_naming_the_key(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "idp.toml"
    path.write_text("[password_hash]\n" + table)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path, issuer="https://idp.example")

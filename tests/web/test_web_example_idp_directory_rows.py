"""Inside one WSGI request the example IdP reads a user's override row once, whoever asks first
(the middleware's Directory lookup, the host session's user loader), and never keeps it past the
request (decision 204; decision 112: a change takes effect at the next request)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from idp_client import USER, login, make_idp

from example_idp.db import Database
from example_idp.directory import RequestRows, TomlDirectory
from oidc_combinedreg.directory import PerUserMfa


def _directory(client: FlaskClient) -> TomlDirectory:
    directory: TomlDirectory = client.application.extensions["example_idp"].directory
    return directory


def _in_a_request(work: Callable[[], None]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        work()
        return [b""]

    RequestRows(app)({}, lambda *a: None)  # type: ignore[arg-type]


def test_a_write_in_the_same_request_is_read_back(tmp_path: Path) -> None:
    directory = _directory(make_idp(tmp_path))
    seen: list[object] = []

    def work() -> None:
        seen.append(directory.get_user(USER).per_user_mfa)  # type: ignore[union-attr]
        directory.set_per_user_mfa(USER, PerUserMfa.ENFORCED)
        seen.append(directory.get_user(USER).per_user_mfa)  # type: ignore[union-attr]
        seen.append(directory.get_session_user(USER)[1])
        directory.end_sessions(USER, 1234)
        seen.append(directory.get_session_user(USER)[1])
        seen.append(directory.sessions_ended_at(USER))

    _in_a_request(work)
    assert seen == [PerUserMfa.DISABLED, PerUserMfa.ENFORCED, None, 1234, 1234]


def test_another_processs_change_is_seen_at_the_next_request(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    directory = _directory(client)
    other = Database(tmp_path / "instance" / "idp.sqlite3")  # another worker's connection
    seen: list[object] = []
    _in_a_request(lambda: seen.append(directory.get_user(USER).per_user_mfa))  # type: ignore[union-attr]
    other.execute(
        "INSERT INTO user_overrides (user_id, per_user_mfa) VALUES (?, 'enforced')", (USER,)
    )
    _in_a_request(lambda: seen.append(directory.get_user(USER).per_user_mfa))  # type: ignore[union-attr]
    assert seen == [PerUserMfa.DISABLED, PerUserMfa.ENFORCED]
    # Outside a request (the combinedreg command's directory): read each time, nothing kept.
    assert directory.get_user(USER).per_user_mfa is PerUserMfa.ENFORCED  # type: ignore[union-attr]


def test_a_password_reset_elsewhere_ends_the_host_session_at_the_next_request(
    tmp_path: Path,
) -> None:
    client = make_idp(tmp_path)
    login(client)
    assert "Sign out" in client.get("/").get_data(as_text=True)
    other = Database(tmp_path / "instance" / "idp.sqlite3")
    other.execute(
        "INSERT INTO session_cutoffs (user_id, at) VALUES (?, ?)", (USER, int(time.time()) + 5)
    )
    assert "Sign out" not in client.get("/").get_data(as_text=True)

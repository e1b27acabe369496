"""The example IdP keeps its SQLite connections (issue 22.1): a pool per process, nothing opened per
query, nothing carried across fork, one operation per connection at a time."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from idp_client import authorize_params, callback, follow, login, make_idp, pkce, registered

from example_idp import db as db_module
from example_idp.db import Database


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pids that opened a connection to the example's database, one entry per connection."""
    pids: list[int] = []
    connect = sqlite3.connect

    def counting(*args: object, **kwargs: object) -> sqlite3.Connection:
        pids.append(os.getpid())
        return connect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(db_module.sqlite3, "connect", counting)
    yield pids


def _issue(client: FlaskClient, client_id: str) -> None:
    verifier, challenge = pkce()
    params = authorize_params(client_id, code_challenge=challenge, code_challenge_method="S256")
    assert "code" in callback(follow(client, "/authorize?" + urlencode(params)))


def test_issuing_a_code_opens_no_connection(tmp_path: Path, opened: list[int]) -> None:
    client = make_idp(tmp_path)
    client_id = registered(client)["client_id"]
    login(client, "/")
    _issue(client, client_id)  # the first request may open what the pool lacks
    before = len(opened)
    for _ in range(3):
        _issue(client, client_id)
    # The old code opened (and set WAL mode on) a connection for each of about 12 queries.
    assert len(opened) == before


def test_issuing_a_code_reads_the_client_and_the_user_fewer_times(
    tmp_path: Path, statements: list[str]
) -> None:
    client = make_idp(tmp_path)
    client_id = registered(client)["client_id"]
    login(client, "/")
    statements.clear()
    _issue(client, client_id)
    clients = [s for s in statements if "FROM clients" in s]
    users = [s for s in statements if "SELECT per_user_mfa FROM user_overrides" in s]
    # Authlib asks for the client five times per /authorize (the old code read it five times,
    # then three: twice in the guard's effective_params, before Flask's request context, and
    # once in the view): now once per WSGI request. The user is read once, by the middleware's
    # guard, with the cutoff Flask-Login's loader then finds in the request (decision 204; the
    # loader read it again before, and older code a third time in current_sign_in).
    assert (len(clients), len(users)) == (1, 1), statements


def _write_in_child(database: Database, opened: list[int]) -> None:
    database.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('child', 1)")
    if opened[-1] != os.getpid():  # the parent's idle connection was used here
        raise SystemExit(3)


def test_a_forked_child_opens_its_own_connection(tmp_path: Path, opened: list[int]) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    database.fetch_one("SELECT 1")  # the parent now holds an idle connection
    child = multiprocessing.get_context("fork").Process(
        target=_write_in_child, args=(database, opened)
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert database.fetch_one("SELECT at FROM session_cutoffs WHERE user_id = 'child'") is not None


def test_threads_write_at_once_without_sharing_a_connection(tmp_path: Path) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                with database.transaction() as conn:
                    conn.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", (f"t{n}", i))
                    database.fetch_all("SELECT * FROM login_failures WHERE key = ?", (f"t{n}",))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = database.fetch_one("SELECT count(*) AS n FROM login_failures")
    assert row is not None and row["n"] == 240


def test_a_failed_transaction_rolls_back_and_its_connection_stays_usable(tmp_path: Path) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    with pytest.raises(sqlite3.IntegrityError), database.transaction() as conn:
        conn.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 1)")
        conn.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 2)")
    assert database.fetch_one("SELECT * FROM session_cutoffs") is None
    assert database.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 3)") == 1


def test_the_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    row = database.fetch_one("PRAGMA journal_mode")
    assert row is not None and row[0] == "wal"

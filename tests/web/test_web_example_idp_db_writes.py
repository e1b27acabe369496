"""A lone write statement of the example IdP runs as its own transaction (decision 201): no
``BEGIN IMMEDIATE``/``COMMIT`` around it, and still all or nothing, and atomic against writers in
other connections (another gunicorn worker)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from example_idp.db import Database


def test_a_lone_write_is_one_statement(tmp_path: Path, statements: list[str]) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    database.fetch_one("SELECT 1")  # a kept connection (its opening runs a PRAGMA)
    statements.clear()
    insert = "INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 1)"
    assert database.execute(insert) == 1
    # The old code: BEGIN IMMEDIATE, the statement, COMMIT.
    assert statements == [insert]
    assert database.fetch_one("SELECT at FROM session_cutoffs WHERE user_id = 'a'") is not None


def test_a_failed_lone_write_leaves_nothing_and_its_connection_usable(tmp_path: Path) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    # Two rows in one statement, the second refused: the first must not stay.
    with pytest.raises(sqlite3.IntegrityError):
        database.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 1), ('a', 2)")
    assert database.fetch_one("SELECT * FROM session_cutoffs") is None
    assert database.execute("INSERT INTO session_cutoffs (user_id, at) VALUES ('a', 3)") == 1
    row = database.fetch_one("SELECT at FROM session_cutoffs WHERE user_id = 'a'")
    assert row is not None and row["at"] == 3


def test_a_counted_insert_is_atomic_against_other_connections(tmp_path: Path) -> None:
    """The registration cap's shape (``INSERT ... SELECT ... WHERE count < cap``) from two
    processes' worth of pools at once never stores more than the cap."""
    path = tmp_path / "idp.sqlite3"
    pools = [Database(path), Database(path)]
    cap, errors = 50, []

    def insert(pool: Database, n: int) -> None:
        try:
            for i in range(60):
                pool.execute(
                    "INSERT INTO login_failures (key, at) SELECT ?, ?"
                    " WHERE (SELECT count(*) FROM login_failures) < ?",
                    (f"t{n}", i, cap),
                )
        except Exception as exc:  # noqa: BLE001  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(pools[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = pools[0].fetch_one("SELECT count(*) AS n FROM login_failures")
    assert row is not None and row["n"] == cap

"""The example IdP's connection pool (example_idp/db.py) knows a forked child by a generation
bumped in ``os.register_at_fork``, not by asking ``os.getpid()`` (a system call) at each borrow
and each return, twice per query (issue 22.5); a read borrows without a generator context
manager. A child still opens its own connections (test_web_example_idp_db.py)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from pathlib import Path

import pytest

from example_idp.db import Database


def _work(database: Database) -> None:
    database.fetch_one("SELECT 1 FROM clients WHERE client_id = ?", ("x",))
    database.fetch_all("SELECT key FROM login_failures WHERE key = ?", ("k",))
    database.execute("DELETE FROM login_failures WHERE key = ?", ("k",))
    with database.transaction() as conn:
        conn.execute("DELETE FROM login_failures WHERE key = ?", ("k",))


def test_queries_ask_no_process_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    _work(database)  # the pool's first connection
    asked: list[int] = []
    getpid = os.getpid

    def counting() -> int:
        asked.append(1)
        return getpid()

    monkeypatch.setattr(os, "getpid", counting)
    for _ in range(5):
        _work(database)
    assert asked == []  # the old code: 2 per borrow, 40 here


def test_a_read_runs_no_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    entered: list[object] = []
    enter = contextlib._GeneratorContextManager.__enter__

    def counting(self: contextlib._GeneratorContextManager[object]) -> object:
        entered.append(self)
        return enter(self)

    monkeypatch.setattr(contextlib._GeneratorContextManager, "__enter__", counting)
    for _ in range(5):
        database.fetch_one("SELECT 1 FROM clients WHERE client_id = ?", ("x",))
        database.fetch_all("SELECT key FROM login_failures WHERE key = ?", ("k",))
        database.execute("DELETE FROM login_failures WHERE key = ?", ("k",))
    assert entered == []  # the old code: one per read, two per write


def _child_reads(database: Database, pipe: object) -> None:
    row = database.fetch_one("SELECT count(*) AS n FROM clients")
    pipe.send((row["n"], len(database._idle)))  # type: ignore[attr-defined]


def test_a_forked_child_does_not_use_the_parents_idle_connections(tmp_path: Path) -> None:
    database = Database(tmp_path / "idp.sqlite3")
    _work(database)
    parents = list(database._idle)
    assert parents
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child_reads, args=(database, sending))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    count, idle = receiving.recv()
    assert count == 0 and idle == 1  # its own connection, given back to its own pool
    assert database._idle == parents  # the parent's pool untouched

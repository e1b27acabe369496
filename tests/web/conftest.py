"""Fixtures for tests through the WSGI stack: the plain-WSGI example host with the middleware."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import T0, Browser, base_config

from example_idp import db as example_idp_db
from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.sqlite import SqliteStore


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def make_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Browser]]:
    stores: list[SqliteStore] = []

    def factory(groups: dict[str, frozenset[str]] | None = None, **sections: Any) -> Browser:
        config = parse_config(base_config(tmp_path, **sections))
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        reg, host = make_app(config, DictDirectory(groups), store=store, clock=clock)
        return Browser(reg, host, clock)

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement run on the SQLite connections the test opens from now on: the example
    IdP's database, and the middleware's store when it is SQLite (``sqlite3.connect`` is one
    function for both: patched through the example's ``db`` module)."""
    seen: list[str] = []
    connect = sqlite3.connect

    def tracing(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(example_idp_db.sqlite3, "connect", tracing)
    yield seen

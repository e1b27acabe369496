"""The ``store`` fixture: every contract test runs once per backend.

To add a backend, append a factory to ``BACKENDS``. A factory gets the pytest request (to reach
other fixtures, e.g. ``request.getfixturevalue("redis_server")``) and the test's FrozenClock, and
returns an open, empty store; the fixture closes it after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store import MemoryStore, SqliteStore, Store

Factory = Callable[[pytest.FixtureRequest, FrozenClock], Store]


def _sqlite(request: pytest.FixtureRequest, clock: FrozenClock) -> Store:
    tmp_path = request.getfixturevalue("tmp_path")
    return SqliteStore(str(tmp_path / "store.db"), clock=clock)


def _memory(request: pytest.FixtureRequest, clock: FrozenClock) -> Store:
    return MemoryStore(clock=clock)


BACKENDS = [
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_memory, id="memory"),
]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000.0)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, clock: FrozenClock) -> Iterator[Store]:
    factory: Factory = request.param
    backend = factory(request, clock)
    yield backend
    backend.close()

"""Record builders and a race helper for the store tests (importable by spawned workers too)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from oidc_combinedreg.crypto import random_id
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import AuditEvent, MethodRecord

T = TypeVar("T")

T0 = 1_700_000_000.0


def method(
    user_id: str = "alice", kind: MethodKind = MethodKind.TOTP, **fields: Any
) -> MethodRecord:
    values: dict[str, Any] = {"id": random_id(), "label": "", "created_at": T0}
    values.update(fields)
    return MethodRecord(user_id=user_id, kind=kind, **values)


def event(name: str = "method.added", user_id: str | None = "alice", **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {"at": T0, "outcome": "success"}
    values.update(fields)
    return AuditEvent(event=name, user_id=user_id, **values)


def race(n: int, action: Callable[[int], T]) -> list[T | Exception]:
    """Run ``action(i)`` in ``n`` threads released together; each result or exception, in order."""
    barrier = threading.Barrier(n)
    results: list[T | Exception] = [RuntimeError("did not run")] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def add_totps_in_process(path: str, barrier: Any, attempts: int, limit: int) -> None:
    """A worker process: open the file, wait for the other worker, then try ``attempts`` adds."""
    from oidc_combinedreg.clock import FrozenClock
    from oidc_combinedreg.exceptions import LimitReached
    from oidc_combinedreg.store import SqliteStore

    store = SqliteStore(path, clock=FrozenClock(T0))
    barrier.wait()
    for _ in range(attempts):
        try:
            store.add_method(method(), limit=limit, events=[event()])
        except LimitReached:
            pass
    store.close()

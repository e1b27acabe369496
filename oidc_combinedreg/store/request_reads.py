"""Reads a store may keep for the rest of one request of the middleware (decision 216).

The middleware opens the scope around each request it serves (its pages, web/app.py, and the
/authorize guard) and closes it before the response is sent; inside it a store may answer a
read from what an earlier read of the same request brought along (the Redis store on one
server: a session's load brings its user's methods and state in the same round trip, and the
request's first ``get_method``/``list_methods``/``get_user_state`` of that user need no round
trip of their own). Nothing outlives the request, so a change made by anyone else is seen by the
next request, as when each read went to the server; a write through the store drops what it
kept, so a change made in the request is seen by the rest of it. Outside a scope (the host's own
calls, the CLI, the admin API's jobs) every read goes to the store.

Set and reset by tokens, like the directory's scope (directory.py): a context manager around
every request costs more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TypeVar

__all__ = ["close_scope", "drop", "keep", "kept", "kept_for", "open_scope", "scope"]

_T = TypeVar("_T")

#: store -> (the user, what it kept of them) in this request, else None outside a scope
_kept: ContextVar[dict[object, Any] | None] = ContextVar("combinedreg_store_reads", default=None)


def open_scope() -> Token[dict[object, Any] | None]:
    return _kept.set({})


def close_scope(token: Token[dict[object, Any] | None]) -> None:
    _kept.reset(token)


@contextmanager
def scope() -> Iterator[None]:
    """:func:`open_scope` and :func:`close_scope` around a block (a request of a host's own that
    calls the store as the middleware's pages do; the tests)."""
    token = open_scope()
    try:
        yield
    finally:
        close_scope(token)


def kept() -> dict[object, Any] | None:
    """This request's kept reads, by store (a store keeps under itself), or None outside."""
    return _kept.get()


def keep(store: object, user_id: str, value: object) -> None:
    """``store`` keeps ``value`` of ``user_id`` for the rest of this request (nothing outside a
    scope)."""
    reads = _kept.get()
    if reads is not None:
        reads[store] = (user_id, value)


def kept_for(store: object, user_id: str, kind: type[_T]) -> _T | None:
    """What ``store`` kept of ``user_id`` in this request, if it is a ``kind``; else None."""
    reads = _kept.get()
    found = None if reads is None else reads.get(store)
    if found is None or found[0] != user_id or not isinstance(found[1], kind):
        return None
    return found[1]


def drop(store: object) -> None:
    """``store`` is about to send something (a change, a new load): what it kept may be stale."""
    reads = _kept.get()
    if reads:
        reads.pop(store, None)

"""``Store.transaction()`` for the SQL stores: a block whose transaction begins with its first store
call, on the connection that call takes (SQLite's writer, a PostgreSQL pool connection)."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING

from oidc_combinedreg.exceptions import StoreUnavailable

__all__ = ["DeferredTransaction"]


class DeferredTransaction:
    """The block's bookkeeping; the store keeps ``_local`` (``pending``, then ``conn`` once a call
    began the transaction) and ends it in ``_finish``."""

    _local: threading.local

    if TYPE_CHECKING:

        def _finish(self, *, commit: bool) -> None:
            """Commit (or roll back) and give back this thread's connection: each store's own."""

    def _in_transaction(self) -> bool:
        local = self._local
        return getattr(local, "conn", None) is not None or getattr(local, "pending", False)

    def transaction(self) -> AbstractContextManager[None]:
        """The store calls of this thread inside the block run as one transaction, begun by the
        block's first call, so that what the block computes before it (a code check's decryption
        and HMACs) holds no lock. A block that raises anything but ``StoreUnavailable`` still
        commits what its calls wrote (a refused code stays counted; see ``Store.transaction``).
        Nested blocks join the outer one."""
        if self._in_transaction():
            return _JOINED
        return _Block(self)


class _Block:
    """The outermost ``transaction()`` block. A class rather than ``@contextmanager``: an MFA
    verify opens two (the page's and the code check's), each paid a generator's set-up."""

    __slots__ = ("_store",)

    def __init__(self, store: DeferredTransaction) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store._local.pending = True

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._store._local.pending = False
        self._store._finish(commit=not isinstance(exc, StoreUnavailable))


#: a nested block: the outer one commits
_JOINED = nullcontext()

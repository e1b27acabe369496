"""``Store.transaction()`` for the SQL stores: a block whose transaction begins with its first store
call, on the connection that call takes (SQLite's writer, a PostgreSQL pool connection)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The store calls of this thread inside the block run as one transaction, begun by the
        block's first call, so that what the block computes before it (a code check's decryption
        and HMACs) holds no lock. A block that raises anything but ``StoreUnavailable`` still
        commits what its calls wrote (a refused code stays counted; see ``Store.transaction``).
        Nested blocks join the outer one."""
        local = self._local
        if self._in_transaction():
            yield
            return
        local.pending, commit = True, True
        try:
            yield
        except StoreUnavailable:
            commit = False
            raise
        finally:
            local.pending = False
            self._finish(commit=commit)

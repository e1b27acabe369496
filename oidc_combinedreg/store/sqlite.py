"""The SQLite backend: the embedded default, one file, safe for threads and for several processes.

Choices, and why:

* **WAL journal**: readers never block the writer and the writer never blocks readers, so page
  views stay fast while another worker binds a method.
* **A small connection pool, not ``threading.local``**: threaded WSGI servers may start a thread per
  request; a connection per thread would leak one open file per finished thread. Each call borrows
  an idle connection (or opens one) and gives it back. After a ``fork`` (gunicorn ``--preload``) the
  parent's connections are never reused: SQLite forbids carrying a connection across ``fork``.
* **Explicit transactions** (``isolation_level=None``): multi-statement writes run inside
  ``BEGIN IMMEDIATE``, which takes the write lock before the first read, so "count, then insert"
  cannot interleave with another writer and never hits ``SQLITE_BUSY_SNAPSHOT`` half-way.
* **One writer at a time**, queued on a thread lock and, across processes, an ``flock`` on
  ``<database>-writer`` (``store/sqlite_lock.py``): SQLite's busy handler sleeps and polls (1, 2,
  5, 10 ... ms), which under concurrent requests cost more than the writes.
* **Every ``sqlite3.Error`` becomes** :class:`~oidc_combinedreg.exceptions.StoreUnavailable` after a
  rollback (locked past the busy timeout, disk full, read-only file, I/O error): callers fail closed
  and nothing is half-written.
* **``synchronous = NORMAL`` by default** (``FULL`` on request): in WAL mode a commit is then
  written to the WAL without an fsync, which happens at checkpoints. A process crash loses
  nothing committed; a power loss or kernel crash may roll back the last commits. ``FULL``
  fsyncs every commit, which makes writes several times slower (docs/storage.md, "Durability").
* **Expiry by the injected clock**: rows carry ``expires_at`` and are invisible once
  ``expires_at <= clock.now()``; expired rows are deleted every few writes (:meth:`purge_expired`).
"""

from __future__ import annotations

from oidc_combinedreg.store.sqlite_audit import SqliteAudit
from oidc_combinedreg.store.sqlite_methods import SqliteMethods
from oidc_combinedreg.store.sqlite_schema import MIGRATIONS

__all__ = ["MIGRATIONS", "SqliteStore"]


class SqliteStore(SqliteMethods, SqliteAudit):
    """The :class:`~oidc_combinedreg.store.base.Store` on one SQLite file.

    ``path`` is a file name or a ``file:`` URI (``file:/srv/reg.db?mode=ro`` for a read-only
    reporting copy). ``busy_timeout`` is how long a write waits for another writer before
    :class:`StoreUnavailable`. ``synchronous`` is ``"normal"`` (a commit survives a process
    crash, the last ones may be lost on power loss) or ``"full"`` (an fsync per commit).
    ``on_connect`` runs on every new connection, after the store's own pragmas (extra pragmas,
    tracing).

    Its parts, one module each: sqlite_connection.py (the pool, the writer lock, transactions,
    checkpoints), sqlite_methods.py (methods, user state), sqlite_ephemeral.py (sessions,
    challenges, counters), sqlite_audit.py (the audit log), sqlite_rows.py (row encodings),
    sqlite_schema.py (migrations), sqlite_lock.py (the writer lock across processes).
    """

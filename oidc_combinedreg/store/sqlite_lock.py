"""The writer lock the SQLite store's processes share: ``flock`` on a file next to the database.

Why by hand: SQLite's own lock is the only one its writers share, and a writer that finds it held
waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... ms between tries. Two gunicorn
workers verifying codes at the same time met there on almost every request: the sleeps, not the
writes (about 50 us each), set the throughput. Taking this lock first, a writer waits for the
holder's release instead; SQLite's lock is then free (apart from writers that do not use this
store, which still meet the busy handler).

``flock`` and not ``fcntl``/``lockf`` byte-range locks: closing *any* descriptor of a file drops a
process's POSIX locks on it, which is why the lock lives in its own file, never the database, and
why this module never touches SQLite's files. The kernel drops a dead process's ``flock``, so a
crashed worker cannot wedge the others. There is no timed ``flock``: a busy lock is polled with
short sleeps (from 20 us, doubling to 1 ms) until the store's busy timeout.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

__all__ = ["WriterLock"]

_FIRST_SLEEP = 20e-6
_MAX_SLEEP = 1e-3


class WriterLock:
    """One writer at a time across the threads of this process and across processes.

    ``path`` is the lock file (created on first use, mode 0600). When it cannot be created (a
    read-only directory), only the threads of this process are serialized and SQLite's busy
    handler orders the processes, as without this lock.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._threads = threading.Lock()
        self._pid = os.getpid()
        self._fd: int | None = None
        self._tried = False

    def acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; False if another writer kept it that long."""
        if os.getpid() != self._pid:
            self._after_fork()
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        fd = self._file()
        if fd is None:
            return True
        delay = _FIRST_SLEEP
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError:
                return True  # a file system without flock: as if the file did not exist
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._threads.release()
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_SLEEP)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _file(self) -> int | None:
        if not self._tried and self._path is not None:
            self._tried = True
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._fd = None
        return self._fd

    def _after_fork(self) -> None:
        """A child process: the parent's thread lock may be held by a thread that is not here,
        and the inherited descriptor shares the parent's lock (``flock`` follows the open file,
        which ``LOCK_UN`` here would release), so both are replaced. Closing the copy is safe:
        the lock lasts while the parent's descriptor is open."""
        if self._fd is not None:
            os.close(self._fd)
        self._threads = threading.Lock()
        self._pid = os.getpid()
        self._fd, self._tried = None, False

    def close(self) -> None:
        if self._fd is not None and os.getpid() == self._pid:
            os.close(self._fd)
        self._fd = None

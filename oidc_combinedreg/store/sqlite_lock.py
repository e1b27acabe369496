"""The writer lock the SQLite store's processes share: ``flock`` on a file next to the database.

Why by hand: SQLite's own lock is the only one its writers share, and a writer that finds it held
waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... ms between tries. Two gunicorn
workers verifying codes at the same time met there on almost every request: the sleeps, not the
writes (tens of microseconds each), set the throughput. Taking this lock first, a writer waits for
the holder's release instead; SQLite's lock is then free (apart from writers that do not use this
store, which still meet the busy handler).

``flock`` and not ``fcntl``/``lockf`` byte-range locks: closing *any* descriptor of a file drops a
process's POSIX locks on it, which is why the lock lives in its own file, never the database, and
why this module never touches SQLite's files. The kernel drops a dead process's ``flock``, so a
crashed worker cannot wedge the others.

There is no timed ``flock``, and sleeping between tries is slow here (a 20 us sleep lasts about
100 us on a busy virtual machine). A writer that finds the lock taken first tries again for up to
``_SPIN`` (0.3 ms), yielding the CPU between tries: a writer holds the lock for about a tenth of
a millisecond, so most waits end there. Measured with two processes verifying MFA codes on one
file: 70-80% of the writes found the lock taken, and handing each wait to a thread and back cost
more CPU than the wait; with the short retry, 1% still reach the thread and the pair served
about 30% more requests. A writer still waiting after that waits in a blocking ``flock`` run by a
helper thread, which the kernel wakes the moment the holder lets go, for at most the store's busy
timeout; a wait given up on releases the lock as soon as the helper gets it. Each blocking wait
uses a descriptor of its own: ``flock`` belongs to the open file, so two waits on one descriptor
would both "get" it.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

__all__ = ["WriterLock", "fork_generation"]

#: bumped in a child process right after ``os.fork()`` (gunicorn's workers, multiprocessing):
#: the store and its lock compare it with the one they were made in, where they asked
#: ``os.getpid()``, a system call, at every checkout, check-in and write (seven per MFA verify)
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


os.register_at_fork(after_in_child=_forked)


def fork_generation() -> int:
    """Changes in a child process after ``fork``: "the process this was made in" without a
    system call (a fork that returns to no Python code, as ``subprocess``'s, calls no hook and
    needs none: the child runs no store)."""
    return _FORKS[0]


#: how long a writer that finds the lock taken keeps trying before it waits in the helper
_SPIN = 0.0003


def _take_blocking(path: str) -> int:
    """In the helper thread: open a descriptor of its own and block until it holds the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _drop_when_taken(future: Future[int]) -> None:
    """A wait given up on: release the lock (and its descriptor) once the helper has it."""
    if future.cancelled() or future.exception() is not None:
        return
    fd = future.result()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _STOP() -> int:
    raise AssertionError("never called: the helper's stop marker")


class _Helper:
    """One daemon thread running blocking waits in turn. Not a ``ThreadPoolExecutor``: its
    threads are joined at interpreter exit, and a wait on a hung holder would hang the exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[int], Callable[[], int]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="combinedreg-sqlite-lock", daemon=True).start()

    def submit(self, job: Callable[[], int]) -> Future[int]:
        future: Future[int] = Future()
        self._jobs.put((future, job))
        return future

    def stop(self) -> None:
        """The thread ends after the wait it is in, if any (a closed store)."""
        self._jobs.put((Future(), _STOP))

    def _run(self) -> None:
        while True:
            future, job = self._jobs.get()
            if job is _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting writer
                future.set_exception(exc)


class WriterLock:
    """One writer at a time across the threads of this process and across processes.

    ``path`` is the lock file (created on first use, mode 0600). When it cannot be created (a
    read-only directory), only the threads of this process are serialized and SQLite's busy
    handler orders the processes, as without this lock.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._threads = threading.Lock()
        self._generation = _FORKS[0]
        self._fd: int | None = None
        self._tried = False
        #: the descriptor holding the lock while it is held (``_fd`` or one from a blocking wait)
        self._holding: int | None = None
        self._helper: _Helper | None = None

    def acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; False if another writer kept it that long."""
        if _FORKS[0] != self._generation:
            self._after_fork()
        if not self._threads.acquire(timeout=timeout):
            return False
        fd = self._file()
        if fd is None:
            return True
        # Writers hold it for a fraction of a millisecond: first try again for a moment,
        # yielding the CPU between tries, before the slower blocking wait in the helper thread.
        deadline = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                now = time.monotonic()
                if not deadline:
                    deadline = now + min(_SPIN, timeout)
                if now >= deadline:
                    break
                os.sched_yield()
            except OSError:
                return True  # a file system without flock: as if the file did not exist
            else:
                self._holding = fd
                return True
        path = self._path
        assert path is not None
        future = self._waiter().submit(lambda: _take_blocking(path))
        try:
            self._holding = future.result(timeout=timeout)
            return True
        except FutureTimeout:
            future.add_done_callback(_drop_when_taken)
        except OSError:
            pass  # the lock file went away or cannot be opened: refused like a timeout
        self._threads.release()
        return False

    def release(self) -> None:
        fd, self._holding = self._holding, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            if fd != self._fd:
                os.close(fd)
        self._threads.release()

    def _file(self) -> int | None:
        if not self._tried and self._path is not None:
            self._tried = True
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._fd = None
        return self._fd

    def _waiter(self) -> _Helper:
        if self._helper is None:
            self._helper = _Helper()
        return self._helper

    def _after_fork(self) -> None:
        """A child process: the parent's thread lock may be held by a thread that is not here,
        the helper thread did not survive the fork, and the inherited descriptor shares the
        parent's lock (``flock`` follows the open file, which ``LOCK_UN`` here would release),
        so all are replaced. Closing the copy is safe: the lock lasts while the parent's
        descriptor is open."""
        if self._fd is not None:
            os.close(self._fd)
        if self._holding is not None and self._holding != self._fd:
            os.close(self._holding)
        self._threads = threading.Lock()
        self._generation = _FORKS[0]
        self._fd, self._tried, self._holding, self._helper = None, False, None, None

    def close(self) -> None:
        if _FORKS[0] != self._generation:
            return
        if self._helper is not None:
            self._helper.stop()
            self._helper = None
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

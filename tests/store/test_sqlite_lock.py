"""The SQLite store's writer lock (store/sqlite_lock.py): one writer across threads and processes,
bounded waits, a dead holder releases it, and a forked child gets a lock of its own."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from store_helpers import race

from oidc_combinedreg.store.sqlite_lock import WriterLock

FORK = multiprocessing.get_context("fork")


def hold(path: str, held: Event, done: Event) -> None:
    """In a child process: take the lock, say so, keep it until told (or until killed)."""
    lock = WriterLock(path)
    assert lock.acquire(timeout=5)
    held.set()
    done.wait(30)
    lock.release()


@pytest.fixture
def lock_path(tmp_path: Path) -> str:
    return str(tmp_path / "reg.sqlite3-writer")


def test_another_process_holding_it_makes_a_writer_wait_then_fail(lock_path: str) -> None:
    held, done = FORK.Event(), FORK.Event()
    child = FORK.Process(target=hold, args=(lock_path, held, done))
    child.start()
    try:
        assert held.wait(10)
        lock = WriterLock(lock_path)
        assert lock.acquire(timeout=0.05) is False, "refused within the timeout"
        assert lock.acquire(timeout=0.05) is False, "and the thread lock was given back"
        done.set()
        assert lock.acquire(timeout=5) is True, "free once the holder releases it"
        lock.release()
    finally:
        done.set()
        child.join(10)
    assert child.exitcode == 0


def test_a_killed_holder_releases_it(lock_path: str) -> None:
    held, done = FORK.Event(), FORK.Event()
    child = FORK.Process(target=hold, args=(lock_path, held, done))
    child.start()
    assert held.wait(10)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    lock = WriterLock(lock_path)
    assert lock.acquire(timeout=5) is True, "the kernel dropped the dead process's lock"
    lock.release()


def test_threads_of_one_process_take_turns(lock_path: str) -> None:
    lock = WriterLock(lock_path)
    inside, most = [0], [0]

    def write(i: int) -> None:
        for _ in range(20):
            assert lock.acquire(timeout=10)
            try:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.0002)
                inside[0] -= 1
            finally:
                lock.release()

    race(8, write)
    assert most[0] == 1, "never two writers at once"


def _child_after_fork(path: str, lock: WriterLock, result: multiprocessing.SimpleQueue) -> None:
    # The parent holds ``lock`` (its thread lock too) at the fork: the child's copy must not
    # count as held, or the child would pass without waiting (shared open file) or deadlock.
    first = lock.acquire(timeout=0.1)
    if first:
        lock.release()
    result.put(first)
    result.put(lock.acquire(timeout=10))  # after the parent released it


def test_a_forked_child_waits_for_the_parent_instead_of_sharing_its_lock(lock_path: str) -> None:
    lock = WriterLock(lock_path)
    assert lock.acquire(timeout=1)
    result = FORK.SimpleQueue()
    child = FORK.Process(target=_child_after_fork, args=(lock_path, lock, result))
    child.start()
    try:
        assert result.get() is False, "the parent's lock held the child back"
        lock.release()
        assert result.get() is True
    finally:
        child.join(10)
    assert child.exitcode == 0
    assert lock.acquire(timeout=1), "the child closing its copy did not break the parent's lock"
    lock.release()


def test_without_a_lock_file_threads_are_still_serialized(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "missing-dir" / "reg.sqlite3-writer"))
    assert lock.acquire(timeout=1)
    got: list[bool] = []
    other = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    other.start()
    other.join()
    assert got == [False]
    lock.release()
    assert lock.acquire(timeout=1)
    lock.release()

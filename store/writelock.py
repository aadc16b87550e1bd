"""The write lock of a SQLite store, handed from process to process at once.

SQLite lets one connection write at a time. A process that finds the database locked sleeps in
SQLite's busy handler, in steps of 1, 2, 5, 10, 15, 20 and 25 ms and more, and wakes to try
again; meanwhile the holder may have finished long ago, or taken the lock again. With two worker
processes writing batches back to back, `paymq bench` measured their writers waiting 15-80 ms
per batch this way, most of it with the database idle. Here the writers of the processes on
one host queue on a file lock first (flock): the kernel wakes the next one as soon as the
holder lets go, and a process that dies holding it releases it with its file descriptor.

The wait is bounded as every store call is (`timeout_s`): a writer that cannot have the lock
in time fails its batch as "no connection free in time", which the store reports as
StoreUnavailable, as it would a database locked past its busy timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import TimeoutError as PoolTimeout


class HostWriteLock:
    """One file lock beside the database, taken by each process's writer around its write
    transaction."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        self._path = path
        self._timeout_s = timeout_s

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        descriptor = self._acquire()
        try:
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def _acquire(self) -> int:
        # A descriptor of its own each time: a wait given up below keeps its own, and drops
        # the lock the moment it gets it.
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        except OSError:
            os.close(descriptor)
            raise
        else:
            return descriptor
        # Held by another process: wait in the kernel (woken at its release), from a thread
        # of its own, so that the wait can be given up after the timeout.
        decided = threading.Lock()
        got = threading.Event()
        gave_up = False

        def wait() -> None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError:  # the waiter times out; the descriptor is not left open
                os.close(descriptor)
                return
            with decided:
                if gave_up:
                    os.close(descriptor)
                    return
                got.set()

        threading.Thread(target=wait, name="paymq-store-write-lock", daemon=True).start()
        if got.wait(self._timeout_s):
            return descriptor
        with decided:
            if got.is_set():
                return descriptor
            gave_up = True
        raise PoolTimeout(
            f"the store's write lock ({self._path}) was not free within {self._timeout_s} s"
        )


def host_write_lock(database: str | None, timeout_s: float) -> HostWriteLock | None:
    """The lock for a SQLite database file; None for an in-memory one (one process only)."""
    if not database or database == ":memory:":
        return None
    return HostWriteLock(Path(f"{database}.writer.lock"), timeout_s)

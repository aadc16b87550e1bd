"""Faults of the payment store: a PostgreSQL server that stops (as if killed) and comes back,
and a SQLite file whose write lock another process holds. (A stalled database is a partition of
the "store" link: linkfaults.py.)

Like every fault here, once begun it runs for its whole length and always ends with the store
back, even when the publishing window is over meanwhile; only a run that is abandoned (Ctrl-C)
cuts it short.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

from paymq_tools.chaos.disturbances import Stage
from paymq_tools.chaos.sqlitelock import ACQUIRE_TIMEOUT_S, HOLDING

LOCK_HOLDER = "sqlite-lock"


class StoreFaultFailed(RuntimeError):
    """The fault could not be made (the harness's failure, reported as such)."""


@dataclass(frozen=True)
class StopDatabase:
    """`pg_ctl stop -m immediate` on the run's private PostgreSQL at `at` of the window, and
    started again on the same data `hold_s` later."""

    hold_s: float = 20.0
    at: float = 0.3

    def describe(self) -> str:
        return f"the database stops (immediate) for {self.hold_s:g} s at {self.at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        postgres = stage.postgres
        if postgres is None:
            raise StoreFaultFailed("the store is not on a private PostgreSQL server")
        stop.wait(self.at * stage.window_s)
        if stage.aborted.is_set():
            return
        postgres.stop()
        stage.done["database stops"] += 1
        try:
            stage.aborted.wait(self.hold_s)
        finally:
            postgres.start()


@dataclass(frozen=True)
class LockSqlite:
    """Another process opens the run's SQLite file and holds its write lock (BEGIN
    IMMEDIATE) for `hold_s` from `at` of the window, then lets go."""

    hold_s: float = 45.0
    at: float = 0.3

    def describe(self) -> str:
        return f"another process holds the SQLite write lock for {self.hold_s:g} s at {self.at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        helpers, path = stage.helpers, stage.sqlite_file
        if helpers is None or path is None:
            raise StoreFaultFailed("the store is not a SQLite file")
        stop.wait(self.at * stage.window_s)
        if stage.aborted.is_set():
            return
        holder = helpers.start(
            LOCK_HOLDER, "chaos", "hold-sqlite-lock", str(path), "--seconds", str(self.hold_s)
        )
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S + 15
        while HOLDING not in helpers.log_tail(LOCK_HOLDER):
            if holder.poll() is not None or time.monotonic() > deadline:
                raise StoreFaultFailed(f"no lock holder: {helpers.log_tail(LOCK_HOLDER)}")
            if stage.aborted.wait(0.1):
                holder.terminate()
                return
        stage.done["sqlite locks"] += 1
        if stage.aborted.wait(self.hold_s):
            holder.terminate()  # its lock goes with it
        if holder.wait(timeout=30) not in (0, -signal.SIGTERM):  # it lets go by itself
            raise StoreFaultFailed(f"the lock holder failed: {helpers.log_tail(LOCK_HOLDER)}")

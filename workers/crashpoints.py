"""Crash points, for the fault-injection suite only: the worker process dies (as with SIGKILL)
at a chosen step of a payment, so tests can prove every step is safe to die at.

Off unless PAYMQ_CRASH_AT names a point; then every PAYMQ_CRASH_EVERY-th payment reaching it
ends the process with exit status 137 and no clean-up of any kind. With
PAYMQ_CRASH_REFERENCE_PREFIX, only payments whose merchant reference starts with it count (the
handler's points know the payment; the consumer's do not, and never match then): poison.

Stall points are their gentler sibling: with PAYMQ_STALL_AT, every PAYMQ_STALL_EVERY-th payment
reaching the point holds its thread for PAYMQ_STALL_S seconds and then goes on, as a thread
would that the scheduler, a swap storm or a stalled disk froze mid-payment: its claim may have
been taken over meanwhile (the stale-claim scenario).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.settings.faults import FaultSettings

logger = logging.getLogger("paymq.worker")

POINTS = (
    "after_provider_call",
    "after_store_commit",
    "after_result_publish",
    "before_ack",
    # On-chain payouts: the signed transaction is stored, and not yet broadcast.
    "after_transaction_stored",
)


@dataclass(frozen=True)
class Stall:
    """Hold the thread for `seconds` on every `every`-th payment reaching `point`."""

    point: str
    seconds: float
    every: int = 1


class CrashPoints:
    def __init__(
        self,
        point: str | None = None,
        every: int = 1,
        reference_prefix: str | None = None,
        *,
        stall: Stall | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name in (point, stall.point if stall else None):
            if name is not None and name not in POINTS:
                raise ValueError(f"unknown crash point {name!r}; known: {', '.join(POINTS)}")
        self._point = point
        self._every = max(1, every)
        self._prefix = reference_prefix
        self._stall = stall
        self._sleep = sleep
        self._count = 0
        self._stalls = 0
        self._lock = threading.Lock()

    def reached(self, point: str, reference: str | None = None) -> None:
        if self._stall is not None and point == self._stall.point:
            self._maybe_stall(self._stall)
        if point != self._point:
            return
        if self._prefix is not None and not (reference or "").startswith(self._prefix):
            return
        with self._lock:
            self._count += 1
            due = self._count % self._every == 0
        if due:
            logger.critical("crash point %s reached: exiting as if killed", point)
            os._exit(137)

    def _maybe_stall(self, stall: Stall) -> None:
        with self._lock:
            self._stalls += 1
            due = self._stalls % max(1, stall.every) == 0
        if due:
            logger.warning("stall point %s reached: holding for %.1f s", stall.point, stall.seconds)
            self._sleep(stall.seconds)


NEVER = CrashPoints()


def crash_points(faults: FaultSettings) -> CrashPoints:
    """The crash and stall points a process's fault settings ask for (none by default)."""
    stall = None
    if faults.stall_at is not None:
        stall = Stall(faults.stall_at, faults.stall_s, faults.stall_every)
    return CrashPoints(
        faults.crash_at, faults.crash_every, faults.crash_reference_prefix, stall=stall
    )

"""Crash points, for the fault-injection suite only: the worker process dies (as with SIGKILL)
at a chosen step of a payment, so tests can prove every step is safe to die at.

Off unless PAYMQ_CRASH_AT names a point; then every PAYMQ_CRASH_EVERY-th payment reaching it
ends the process with exit status 137 and no clean-up of any kind. With
PAYMQ_CRASH_REFERENCE_PREFIX, only payments whose merchant reference starts with it count (the
handler's points know the payment; the consumer's do not, and never match then): poison.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger("paymq.worker")

POINTS = (
    "after_provider_call",
    "after_store_commit",
    "after_result_publish",
    "before_ack",
    # On-chain payouts: the signed transaction is stored, and not yet broadcast.
    "after_transaction_stored",
)


class CrashPoints:
    def __init__(
        self, point: str | None = None, every: int = 1, reference_prefix: str | None = None
    ) -> None:
        if point is not None and point not in POINTS:
            raise ValueError(f"unknown crash point {point!r}; known: {', '.join(POINTS)}")
        self._point = point
        self._every = max(1, every)
        self._prefix = reference_prefix
        self._count = 0
        self._lock = threading.Lock()

    def reached(self, point: str, reference: str | None = None) -> None:
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


NEVER = CrashPoints()

"""Telling the store which stored results the broker has confirmed, off the I/O thread.

Every stored result stays marked unpublished until its publish is confirmed; the reconciler
publishes again whatever stays marked for too long (I6). The I/O thread must never wait for the
database, so confirmed results are queued here and cleared by one thread, many per statement:
one store round trip per batch, not per payment. A mark that cannot be written (the store is
down) is kept for the next batch; one lost in a crash only costs a harmless republish of a
byte-identical event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

from common.errors import StoreUnavailable

logger = logging.getLogger("paymq.worker")

Confirmed = tuple[str, str]  # (payment id, result message id)

#: Marks gathered for this long go to the store together (at most; see `flush_interval_s`).
#: Each flush is a store transaction, and below capacity one that runs cold: at 20 payments/s a
#: 0.2 s interval cost 0.4 of a worker's 2.5 transactions per payment and 7% of its CPU
#: (docs/performance.md).
FLUSH_INTERVAL_S = 1.0
#: Marks per statement: two parameters each, far below SQLite's cap on one statement's.
MAX_PER_STATEMENT = 400
#: Beyond this many waiting (the store is down for long), the oldest are dropped: the sweeper
#: republishes them, and subscribers deduplicate.
MAX_WAITING = 50_000


def flush_interval_s(republish_after_s: float) -> float:
    """How long marks may wait: a tenth of the reconciler's republish delay at most, so a
    confirmed result is marked long before anyone would publish it again."""
    return min(FLUSH_INTERVAL_S, republish_after_s / 10)


class PublishedMarks:
    def __init__(
        self,
        mark: Callable[[Collection[Confirmed]], None],
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._mark = mark
        self._interval_s = interval_s
        self._max_waiting = max_waiting
        self._waiting: dict[Confirmed, None] = {}  # insertion-ordered, no duplicates
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paymq-published", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, confirmed: Confirmed) -> None:
        """Any thread: the broker confirmed this stored result."""
        with self._lock:
            self._waiting[confirmed] = None
            while len(self._waiting) > self._max_waiting:
                del self._waiting[next(iter(self._waiting))]

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is waiting (once more), then stop."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        else:
            self.flush()

    def flush(self) -> bool:
        """Write the waiting marks now, a bounded number per statement (SQLite caps the
        parameters of one); False (the rest kept) if the store is unavailable."""
        with self._lock:
            waiting = list(self._waiting)
        for start in range(0, len(waiting), MAX_PER_STATEMENT):
            batch = waiting[start : start + MAX_PER_STATEMENT]
            try:
                self._mark(batch)
            except StoreUnavailable as exc:
                logger.debug("%d published marks wait for the store: %s", len(waiting), exc)
                return False
            with self._lock:
                for confirmed in batch:
                    self._waiting.pop(confirmed, None)
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval_s)
            try:
                self.flush()
            except Exception:  # a bug here must not end the marks; the sweeper covers them
                logger.exception("writing published marks failed")
        self.flush()

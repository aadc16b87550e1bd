"""The I/O loop of the stub session, turned by the test in virtual time.

The test's thread is the I/O thread: callbacks handed over with `call_threadsafe` (by the
consumer's pool threads) and timers set with `call_later` run only while the test turns the loop
(`turn`, `run_until`, `advance`), or while the session's `run()` serves it. Time is virtual: a
timer fires once `advance` has moved the clock to it.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from collections.abc import Callable

#: How long, in real time, the loop waits for the consumer's threads before the test fails.
WAIT_S = 5.0


class StubTimeout(AssertionError):
    """Nothing more came to the loop, and what the test awaited never happened."""


class StubLoop:
    """Callbacks handed over, timers and the virtual clock; StubSession (session.py) is one."""

    def __init__(self) -> None:
        self._handed: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        #: The virtual clock, in seconds; only `advance` moves it.
        self.now_s = 0.0

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        self._handed.put(callback)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> object:
        timer = (self.now_s + max(0.0, delay_s), next(self._timer_order), callback)
        heapq.heappush(self._timers, timer)
        return timer

    @property
    def timers(self) -> list[float]:
        """When the timers not fired yet are due, soonest first (virtual seconds)."""
        return sorted(due_s for due_s, _, _ in self._timers)

    def turn(self) -> int:
        """Run what is due now (callbacks handed over, timers due) until nothing more is;
        returns how many ran."""
        ran = 0
        while True:
            try:
                callback = self._handed.get_nowait()
            except queue.Empty:
                if not self._timers or self._timers[0][0] > self.now_s:
                    return ran
                callback = heapq.heappop(self._timers)[2]
            callback()
            ran += 1

    def run_until(self, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Turn the loop until `condition()` holds, waiting for callbacks from other threads at
        most `timeout_s` of real time. Virtual time stands still."""
        deadline = time.monotonic() + timeout_s
        self.turn()
        while not condition():
            try:
                callback = self._handed.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise StubTimeout(f"still waiting after {timeout_s} s") from None
            callback()
            self.turn()

    def advance(self, seconds: float) -> None:
        """Move the virtual clock on, firing the timers due meanwhile, in order."""
        until_s = self.now_s + seconds
        self.turn()
        while self._timers and self._timers[0][0] <= until_s:
            due_s, _, callback = heapq.heappop(self._timers)
            self.now_s = max(self.now_s, due_s)
            callback()
            self.turn()
        self.now_s = until_s

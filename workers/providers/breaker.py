"""A circuit breaker per provider: stop sending to a provider that keeps failing, and let one
real call probe it again after a while.

    closed --(failures_to_open consecutive failures)--> open
    open   --(open_ms elapsed: the next call is the probe)--> half-open
    half-open --(the probe succeeds)--> closed
    half-open --(the probe fails)--> open again

A failure is a provider that did not answer sanely: a refused connection, a timeout, a reset
or a 5xx. A decline, a 4xx or a 429 is a provider that answered, and counts as a success here.
While a probe is in flight, every other call is refused as if the breaker were open.

Why not pybreaker: its `call` holds the breaker's lock for the whole protected call, which would
put a worker's 32 provider calls in single file; and by default the failure that trips it is
re-raised as CircuitBreakerError, which would make a timeout (the provider may have acted)
look like a call that was never made. The state machine is small; the clock is injected, so
tests move time instead of waiting for it.
"""

from __future__ import annotations

import threading
from enum import StrEnum

from common.clock import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, name: str, clock: Clock, *, failures_to_open: int, open_ms: int) -> None:
        if failures_to_open < 1 or open_ms < 0:
            raise ValueError("failures_to_open must be >= 1 and open_ms >= 0")
        self.name = name
        self._clock = clock
        self._failures_to_open = failures_to_open
        self._open_ms = open_ms
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at_ms = 0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """May a call go to this provider now? True at most once while half-open: the caller
        then makes the probe and must report its result."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock.now_ms() - self._opened_at_ms < self._open_ms:
                    return False
                self._state = BreakerState.HALF_OPEN
                self._probing = False
            if self._probing:
                return False
            self._probing = True
            return True

    def reopens_in_ms(self) -> int:
        """How long until a call may be let through again (0: now, or once a probe ends)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0
            return max(0, self._opened_at_ms + self._open_ms - self._clock.now_ms())

    def succeeded(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self._failures_to_open:
                self._state = BreakerState.OPEN
                self._opened_at_ms = self._clock.now_ms()
                self._probing = False

    def released(self) -> None:
        """The allowed call was not made after all (nothing learned): free the probe."""
        with self._lock:
            self._probing = False

"""One back-off for every reconnect and retry loop of the product: exponential, capped,
jittered, and reset once what it guards has stayed up for a while.

    failures in a row:  1          2              3                ...
    pause:              initial_s  initial_s * 2  initial_s * 4    ... at most cap_s
                        each times a random factor in [1 - jitter, 1]

Jitter spreads clients that failed together (a broker restart drops them all at once), so they
do not all come back in the same instant. `stable_s` keeps a flapping link's back-off growing:
only a success that lasted that long starts the next failure from `initial_s` again.

Only the arithmetic is here; each loop waits its own way (an I/O loop timer, a stop event, a
connection that keeps its heartbeats while it waits), so none is a decorator around a call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from common.clock import Clock, MonotonicClock

#: Past this many doublings the pause is the cap anyway; the bound keeps the float finite.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial_s: float
    cap_s: float
    multiplier: float = 2.0
    #: Up to this share of each pause is taken off at random (0.5: from half to all of it).
    jitter: float = 0.5
    #: A success resets the count of failures once it has lasted this long (0: at once).
    stable_s: float = 0.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.cap_s < 0:
            raise ValueError("a back-off needs initial_s > 0 and cap_s >= 0")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1 or self.stable_s < 0:
            raise ValueError("a back-off needs multiplier >= 1, jitter in [0, 1], stable_s >= 0")

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """The pause after `failures` failures in a row (1 for the first)."""
        if failures < 1:
            raise ValueError("no pause before the first failure")
        doublings = min(failures - 1, _MAX_DOUBLINGS)
        delay_s = min(self.cap_s, self.initial_s * self.multiplier**doublings)
        if self.jitter:
            delay_s *= (rng or _RANDOM).uniform(1.0 - self.jitter, 1.0)
        return delay_s


class Backoff:
    """The failures in a row of one loop, under a policy. Not thread-safe: one per loop."""

    def __init__(
        self, policy: BackoffPolicy, *, clock: Clock | None = None, rng: random.Random | None = None
    ) -> None:
        self.policy = policy
        self._clock = clock or MonotonicClock()
        self._rng = rng or _RANDOM
        self._failures = 0
        self._up_since_ms: int | None = None

    @property
    def failures(self) -> int:
        return self._failures

    def succeeded(self) -> None:
        """What the loop guards works (connected, declared), from now on."""
        if self._up_since_ms is None:
            self._up_since_ms = self._clock.now_ms()

    def failed(self) -> int:
        """Count a failure (after a success that lasted `stable_s`, the first again); returns
        the failures in a row."""
        up_since_ms = self._up_since_ms
        if up_since_ms is not None:
            if self._clock.now_ms() - up_since_ms >= self.policy.stable_s * 1000:
                self._failures = 0
            self._up_since_ms = None
        self._failures += 1
        return self._failures

    def next_delay_s(self) -> float:
        """Count a failure and return the pause before the next attempt."""
        return self.policy.delay_s(self.failed(), self._rng)


_RANDOM = random.Random()  # noqa: S311 - jitter, not cryptography

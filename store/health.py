"""Whether the payment store answers this process: one log line when it stops, one when it
answers again, the `paymq_store_stalled` gauge, and a callback so a worker stops taking deliveries
while its store cannot record them.

Store calls report here (StoreAccess in store/outage.py does it for every call of the claims
and the checks): a StoreUnavailable marks the store down; any call that succeeds marks it up.
While it is down nothing else may call it, so a probe thread asks it (`ping`) every
`probe_interval_s` until it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.clock import Clock, SystemClock
from common.metrics import Metrics

logger = logging.getLogger("paymq.store")

PROBE_INTERVAL_S = 2.0


class StoreHealth:
    def __init__(
        self,
        ping: Callable[[], None],
        *,
        metrics: Metrics | None = None,
        probe_interval_s: float = PROBE_INTERVAL_S,
        clock: Clock | None = None,
    ) -> None:
        self._ping = ping
        self._metrics = metrics or Metrics()
        self._probe_interval_s = probe_interval_s
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._answering_since_ms = self._clock.now_ms()
        self._listeners: list[Callable[[bool], None]] = []
        self._closed = threading.Event()

    @property
    def up(self) -> bool:
        return self._down_since is None

    @property
    def answering_since_ms(self) -> int | None:
        """Since when the store has answered this process without a stall; None while it
        does not (sweeps that judge idleness by time must not count a stall as idleness)."""
        return self._answering_since_ms if self.up else None

    def listen(self, on_change: Callable[[bool], None]) -> None:
        """`on_change(up)` runs, on the thread that noticed, each time the store stops or
        starts answering."""
        self._listeners.append(on_change)

    def failed(self, error: Exception) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.warning("payment store unavailable (%s); no new deliveries until it answers", error)
        self._metrics.store_stalled.set(1)
        self._metrics.store_stalls.inc()
        threading.Thread(target=self._probe, name="paymq-store-probe", daemon=True).start()
        self._tell(up=False)

    def answered(self) -> None:
        if self._down_since is None:  # the hot path: one attribute read
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is None:
            return
        self._answering_since_ms = self._clock.now_ms()
        logger.warning("payment store answers again after %.1f s", time.monotonic() - since)
        self._metrics.store_stalled.set(0)
        self._tell(up=True)

    def close(self) -> None:
        self._closed.set()

    def _probe(self) -> None:
        while not self._closed.wait(self._probe_interval_s) and not self.up:
            try:
                self._ping()
            except Exception as exc:  # still down: say nothing more, ask again
                logger.debug("payment store probe failed: %s", exc)
            else:
                self.answered()

    def _tell(self, *, up: bool) -> None:
        for listener in self._listeners:
            try:
                listener(up)
            except Exception:  # a listener must not break store calls
                logger.exception("store health listener failed")

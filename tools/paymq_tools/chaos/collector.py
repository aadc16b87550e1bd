"""Every copy of every result event of a run, from the durable notifications queue, as a
subscriber receives them: verified, with the raw bytes kept for the I5 check.

The collector rides out broker restarts and forced connection closes by opening a new stream;
events it had not acked yet come again (byte-identical copies: counted as redeliveries).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.models import PaymentStatus
from common.subscriber import ResultStream
from paymq_tools.chaos.checker import ReceivedEvent

logger = logging.getLogger("paymq.chaos")

StreamFactory = Callable[[], ResultStream]
RECONNECT_DELAY_S = 0.5


class ResultCollector:
    def __init__(self, open_stream: StreamFactory) -> None:
        self._open_stream = open_stream
        self._lock = threading.Lock()
        self._events: list[ReceivedEvent] = []
        self._statuses: dict[str, set[PaymentStatus]] = {}
        #: When each copy arrived (monotonic seconds): recovery.py's input.
        self._arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-collector", daemon=True)
        self.connected = threading.Event()
        self.reconnects = 0
        self.last_event_at = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def events(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._events)

    def statuses(self) -> dict[str, set[PaymentStatus]]:
        """Payment id -> every status seen so far."""
        with self._lock:
            return {k: set(v) for k, v in self._statuses.items()}

    def arrivals(self) -> list[float]:
        with self._lock:
            return list(self._arrivals)

    def quiet_for_s(self) -> float:
        return time.monotonic() - self.last_event_at

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as exc:  # any broker trouble: reconnect, as a subscriber would
                self.connected.clear()
                self.reconnects += 1
                logger.info("result stream lost (%r); reconnecting", exc)
                self._stop.wait(RECONNECT_DELAY_S)

    def _consume(self) -> None:
        with self._open_stream() as stream:
            self.connected.set()
            for event in stream.events(inactivity_timeout_s=0.2):
                if self._stop.is_set():
                    return
                if event is None:
                    continue
                result = event.result
                received = ReceivedEvent(event.message.message_id or "", event.message.body, result)
                with self._lock:
                    self._events.append(received)
                    if result is not None and result.payment_id is not None:
                        self._statuses.setdefault(str(result.payment_id), set()).add(result.status)
                    self._arrivals.append(time.monotonic())
                self.last_event_at = time.monotonic()

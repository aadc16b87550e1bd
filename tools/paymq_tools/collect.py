"""The tools' one way of collecting result events: the demo, the benchmark, the fault-injection
suite and the tests read results through here.

- `take`: in the caller's thread, the events of an open stream until the caller has what it
  waits for (the demo's batch, a test's next results), or a deadline.
- `ResultCollector`: in a thread of its own, every copy of every event with its arrival time
  (the fault suite's accounting, the benchmark's latencies). It rides out broker restarts and
  forced connection closes by opening a new stream; events it had not acked come again
  (byte-identical copies, counted as redeliveries by whoever reads them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from common.models import PaymentStatus
from common.subscriber import ResultEvent, ResultStream

logger = logging.getLogger("paymq.tools.collect")

StreamFactory = Callable[[], ResultStream]
RECONNECT_DELAY_S = 0.5
POLL_S = 0.2


def take(
    stream: ResultStream,
    *,
    keep: Callable[[ResultEvent], bool],
    count: int,
    timeout_s: float,
    on_kept: Callable[[int], None] | None = None,
) -> list[ResultEvent]:
    """The next events of `stream` that `keep` accepts, until `count` of them or `timeout_s`
    (then: as many as came). `on_kept` hears the running count, for progress."""
    kept: list[ResultEvent] = []
    deadline = time.monotonic() + timeout_s
    for event in stream.events(inactivity_timeout_s=POLL_S):
        if event is not None and keep(event):
            kept.append(event)
            if on_kept is not None:
                on_kept(len(kept))
        if len(kept) >= count or time.monotonic() > deadline:
            break
    return kept


@dataclass(frozen=True)
class Arrival:
    """One copy of a result event and when it arrived (monotonic seconds)."""

    event: ResultEvent
    at_s: float


class ResultCollector:
    """Every copy of every result event of a stream, gathered by a thread of its own."""

    def __init__(self, open_stream: StreamFactory, *, name: str = "result-collector") -> None:
        self._open_stream = open_stream
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        self._statuses: dict[str, set[PaymentStatus]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.connected = threading.Event()
        self.reconnects = 0
        self.last_event_at = time.monotonic()

    def __enter__(self) -> ResultCollector:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def statuses(self) -> dict[str, set[PaymentStatus]]:
        """Payment id -> every status seen so far (verified events only)."""
        with self._lock:
            return {k: set(v) for k, v in self._statuses.items()}

    def count(self) -> int:
        with self._lock:
            return len(self._arrivals)

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
            for event in stream.events(inactivity_timeout_s=POLL_S):
                if self._stop.is_set():
                    return
                if event is None:
                    continue
                result = event.result
                with self._lock:
                    self._arrivals.append(Arrival(event, time.monotonic()))
                    if result is not None and result.payment_id is not None:
                        self._statuses.setdefault(str(result.payment_id), set()).add(result.status)
                self.last_event_at = time.monotonic()

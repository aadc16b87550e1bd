"""The sending side: claim the deliveries that are due and send each from a small thread pool.

Claims are taken only for free threads, so a slow or dead endpoint occupies at most the
threads its own attempts hold (each bounded by the timeouts) and never holds a queue of other
endpoints' deliveries behind it; a failed attempt goes back to the store with its next time.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from common.clock import Clock
from common.errors import PaymqError
from common.metrics import Metrics
from webhooks.deliveries import Claimed, WebhookDeliveries
from webhooks.endpoints import Endpoints
from webhooks.schedule import next_attempt_ms
from webhooks.sender import AttemptOutcome, AttemptResult, Sender

logger = logging.getLogger("paymq.webhooks")

ENDPOINT_REMOVED = "endpoint removed"


class Dispatcher:
    def __init__(
        self,
        deliveries: WebhookDeliveries,
        sender: Sender,
        endpoints: Callable[[], Endpoints],
        *,
        clock: Clock,
        schedule_s: Sequence[float],
        concurrency: int,
        per_endpoint: int,
        poll_interval_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._deliveries = deliveries
        self._metrics = metrics or Metrics()
        self._sender = sender
        self._endpoints = endpoints
        self._clock = clock
        self._schedule_s = tuple(schedule_s)
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._poll_interval_s = poll_interval_s
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="paymq-webhook")
        #: Attempts in flight, by endpoint id.
        self._in_flight: dict[Future[AttemptOutcome | None], str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        """New deliveries are stored: look at once instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        """Claim and send until stopped; then wait for the attempts in flight to finish."""
        try:
            while not self._stopping.is_set():
                try:
                    self.dispatch_once()
                except PaymqError as exc:  # the store is down: look again at the next poll
                    logger.warning("cannot claim webhook deliveries: %s", exc.code)
                self._wake.wait(self._poll_interval_s)
                self._wake.clear()
        finally:
            self._pool.shutdown(wait=True)  # in-flight POSTs finish and are recorded

    def dispatch_once(self) -> int:
        """Claim what is due for the free threads and start sending it; how many started."""
        with self._lock:
            free = self._concurrency - len(self._in_flight)
            busy = Counter(self._in_flight.values())
        if free <= 0:
            return 0
        claimed = self._deliveries.claim_due(free, per_endpoint=self._per_endpoint, busy=busy)
        for delivery in claimed:
            future = self._pool.submit(self.send, delivery)
            with self._lock:
                self._in_flight[future] = delivery.endpoint_id
            future.add_done_callback(self._done)
        return len(claimed)

    def _done(self, future: Future[AttemptOutcome | None]) -> None:
        with self._lock:
            self._in_flight.pop(future, None)
        self._wake.set()  # a thread is free: claim the next due delivery

    def send(self, delivery: Claimed) -> AttemptOutcome | None:
        """One attempt, recorded; the outcome (None when the endpoint is gone)."""
        extra = {"payment_id": delivery.payment_id, "message_id": delivery.event_id}
        try:
            endpoint = self._endpoints().get(delivery.endpoint_id)
            if endpoint is None:
                self._deliveries.give_up(delivery, ENDPOINT_REMOVED)
                logger.error("webhook to %s given up: %s", delivery.endpoint_id, ENDPOINT_REMOVED)
                return None
            outcome = self._sender.attempt(endpoint, delivery.event_id, delivery.body)
            self._record(delivery, outcome, extra)
            return outcome
        except Exception:  # a thread must never die silently with a claim held
            logger.exception("webhook to %s: attempt failed", delivery.endpoint_id, extra=extra)
            return None

    def _record(
        self, delivery: Claimed, outcome: AttemptOutcome, extra: Mapping[str, object]
    ) -> None:
        endpoint_id, attempt = delivery.endpoint_id, delivery.attempt
        self._metrics.webhook_attempt.labels(endpoint_id, outcome.result.value).observe(
            outcome.elapsed_ms / 1000
        )
        if outcome.result is AttemptResult.DELIVERED:
            kept = self._deliveries.delivered(delivery)
            logger.info("webhook to %s delivered (attempt %d)", endpoint_id, attempt, extra=extra)
        else:
            error = outcome.error or outcome.result.value
            due_ms = next_attempt_ms(attempt, self._clock.now_ms(), self._schedule_s)
            if due_ms is None:
                kept = self._deliveries.give_up(delivery, error)
                self._metrics.webhook_gave_up.labels(endpoint_id).inc()
                logger.error(
                    "webhook to %s given up after %d attempts: %s",
                    endpoint_id,
                    attempt,
                    error,
                    extra=extra,
                )
            else:
                kept = self._deliveries.retry(delivery, error, due_ms)
                logger.warning(
                    "webhook to %s attempt %d: %s; next in %.0f s",
                    endpoint_id,
                    attempt,
                    error,
                    (due_ms - self._clock.now_ms()) / 1000,
                    extra=extra,
                )
        if not kept:
            logger.warning(
                "webhook to %s: lease lost before the outcome was recorded",
                endpoint_id,
                extra=extra,
            )

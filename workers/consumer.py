"""The worker's I/O shell: deliveries in, provider work out to a thread pool, acks back.

Threads (pika's threading rule):
- the I/O thread runs the AMQP session: receives deliveries, publishes, acks, heartbeats;
- pool threads run `Handler.handle` (verification and the provider call) and hand the
  resulting `Disposition` back with `call_threadsafe`; they never touch pika.

Per delivery: every message of the disposition is published with confirms, and only when all
are confirmed is the delivery acked, on its own channel. If that channel is gone meanwhile, the
ack is skipped and the broker redelivers: at least once, never lost. A stored result whose
publish is confirmed is reported to `published` (workers/published.py), whatever becomes of
the ack; one that never is, the reconciler publishes again from the store.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common.amqp.session import DeliveryToken
from common.envelope import InboundMessage
from common.errors import PaymqError
from common.logcontext import log_context
from common.metrics import Metrics
from workers.crashpoints import NEVER, CrashPoints
from workers.handler import Disposition
from workers.session import SessionFactory

logger = logging.getLogger("paymq.worker")

HEALTH_INTERVAL_S = 5.0
#: Under load, finished payments are settled (results published, then acked) in batches
#: gathered over this long: a few milliseconds of latency buy far fewer loop turns, frames and
#: confirms per payment (measured by `paymq bench`: about a third less worker CPU per payment).
SETTLE_BATCH_S = 0.003


@dataclass(frozen=True)
class ConsumerOptions:
    queue: str
    channel: str
    concurrency: int
    prefetch: int
    shutdown_grace_s: float
    health_file: Path | None = None


class Consumer:
    def __init__(
        self,
        session: SessionFactory,
        options: ConsumerOptions,
        handle: Callable[[InboundMessage], Disposition],
        *,
        on_stopped: Callable[[], None] | None = None,
        crash: CrashPoints = NEVER,
        metrics: Metrics | None = None,
        published: Callable[[tuple[str, str]], None] | None = None,
    ) -> None:
        self._options = options
        self._handle = handle
        self._published = published
        self._on_stopped = on_stopped
        self._crash = crash
        self._session = session(self)
        self._pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="paymq-work")
        self._in_flight = 0
        metrics = metrics or Metrics()
        self._in_flight_gauge = metrics.in_flight.labels(options.channel)
        self._publish_time = metrics.result_publish.labels(options.channel)
        self._draining = False
        # Each finished delivery with the time it finished (time.perf_counter()).
        self._done: deque[tuple[DeliveryToken, str | None, Future[Disposition], float]] = deque()
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        self.processed = 0

    # --- public, any thread -------------------------------------------------------------------

    def run(self) -> None:
        """Consume until `shutdown()` has drained in-flight payments (or the grace ran out)."""
        self._session.call_threadsafe(self._tick)
        try:
            self._session.run()
        finally:
            # Calls still running past the grace period end within the provider timeouts.
            self._pool.shutdown(wait=True, cancel_futures=True)
            if self._on_stopped is not None:
                self._on_stopped()
            logger.info("worker stopped after %d messages", self.processed)

    @property
    def consuming(self) -> bool:
        """The broker has confirmed this worker's consumer on its current connection."""
        return self._session.consuming

    def shutdown(self) -> None:
        """Stop consuming, finish what is in flight, ack, close. Safe from signal handlers."""
        self._session.call_threadsafe(self._drain)

    def store_changed(self, up: bool) -> None:
        """Any thread: while the payment store cannot record payments, take no deliveries
        (they would only wait in a retry tier, or be held until the consumer timeout)."""
        self._session.call_threadsafe(self._resume if up else self._session.pause_consumer)

    def _resume(self) -> None:
        if not self._draining:
            self._session.resume_consumer()

    # --- SessionListener (I/O thread) -----------------------------------------------------------

    def session_ready(self) -> None:
        if not self._draining:
            self._session.consume(self._options.queue, self._options.prefetch, self._on_message)

    def session_lost(self, reason: str) -> None:
        # Deliveries in flight belong to the dead channel; their results will be dropped and the
        # broker redelivers them. Nothing else to do until the session reconnects.
        if self._draining:
            self._session.stop()

    # --- I/O thread -------------------------------------------------------------------------------

    def _on_message(self, message: InboundMessage, token: DeliveryToken) -> None:
        self._in_flight += 1
        self._in_flight_gauge.inc()
        future = self._pool.submit(self._handle, message)
        message_id = message.message_id
        future.add_done_callback(lambda f: self._completed(token, message_id, f))

    def _completed(
        self, token: DeliveryToken, message_id: str | None, future: Future[Disposition]
    ) -> None:
        """Pool thread: queue the disposition for the I/O thread, waking it only if it is not
        already due to run: under load one wake-up settles many payments."""
        self._done.append((token, message_id, future, time.perf_counter()))
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._session.call_threadsafe(self._schedule_settle)

    def _schedule_settle(self) -> None:
        # Batch only when busy: below a quarter of the pool in flight, latency matters more
        # than the loop turns saved.
        busy = self._in_flight > self._options.concurrency // 4
        self._session.call_later(SETTLE_BATCH_S if busy else 0.0, self._settle_completed)

    def _settle_completed(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        while self._done:
            token, message_id, future, done_s = self._done.popleft()
            payment_id = None if future.exception() else future.result().payment_id
            # Log lines about this delivery, here and in its confirm callbacks, name it.
            with log_context(message_id=message_id, payment_id=payment_id):
                self._settle(token, future, done_s)

    def _settle(self, token: DeliveryToken, future: Future[Disposition], done_s: float) -> None:
        try:
            disposition = future.result()
        except Exception:
            # A handler bug after the provider call (checks have their own net): return the
            # delivery; redeliveries reach the provider with the same idempotency key, and past
            # the queue's delivery limit the message is dead-lettered as poison.
            logger.exception("handler failed; the message goes back to the queue")
            self._session.reject(token)
            self._finish()
            return
        if token.generation != self._session.generation:
            logger.info("%s: channel lost meanwhile, awaiting redelivery", disposition.summary)
            self._finish()
            return
        remaining = len(disposition.publish)
        failed: list[PaymqError] = []
        if remaining == 0:  # nothing to publish (another worker owns the payment now)
            self._after_publish(token, disposition, failed)
            return

        context = contextvars.copy_context()  # the delivery's ids, for the lines written then

        def confirmed(error: PaymqError | None) -> None:
            nonlocal remaining
            remaining -= 1
            if error is not None:
                failed.append(error)
            if remaining == 0:
                if not failed:
                    self._publish_time.observe(time.perf_counter() - done_s)
                context.run(self._after_publish, token, disposition, failed)

        for outbound in disposition.publish:
            self._session.publish(outbound, confirmed)

    def _after_publish(
        self, token: DeliveryToken, disposition: Disposition, failed: list[PaymqError]
    ) -> None:
        if failed:
            logger.warning("%s: publish failed (%s); not acked", disposition.summary, failed[0])
            self._session.reject(token)
            self._finish()
            return
        if disposition.stored_result is not None and self._published is not None:
            self._published(disposition.stored_result)
        if disposition.publish:
            self._crash.reached("after_result_publish")
        self._crash.reached("before_ack")
        if self._session.ack(token):
            logger.log(disposition.level, "%s", disposition.summary)
            self.processed += 1
        else:
            logger.info("%s: channel lost before the ack, awaiting redelivery", disposition.summary)
        self._finish()

    def _finish(self) -> None:
        self._in_flight -= 1
        self._in_flight_gauge.dec()
        if self._draining and self._in_flight == 0:
            self._session.stop()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        logger.info("shutting down: %d payments in flight", self._in_flight)
        self._session.call_later(self._options.shutdown_grace_s, self._grace_expired)

        def cancelled() -> None:
            if self._in_flight == 0:
                self._session.stop()

        self._session.cancel_consumer(cancelled)

    def _grace_expired(self) -> None:
        logger.warning(
            "%d payments still in flight after the grace period; they will be redelivered",
            self._in_flight,
        )
        self._session.stop()

    def _tick(self) -> None:
        health = self._options.health_file
        if health is not None and self._session.ready and not self._draining:
            # The file's mtime tells a health check the worker is alive and connected.
            try:
                health.touch()
            except OSError as exc:  # a health file must never stop payments
                logger.warning("cannot touch health file %s: %s", health, exc)
        self._session.call_later(HEALTH_INTERVAL_S, self._tick)

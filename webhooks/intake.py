"""The webhooks queue's consumer: every result event is verified, its deliveries (one per
matching endpoint) are committed to the store, and only then is it acked. An event that does not
verify is never delivered: a copy goes to the dead-letter queue with why, and it is acked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from common.amqp.admin import BrokerAdmin, Delivery
from common.backoff import Backoff, BackoffPolicy
from common.clock import Clock
from common.deadletters import dead_letter_copy
from common.envelope import InboundMessage
from common.errors import BrokerUnavailable, MessageRejected, PaymqError, RetryableError
from common.metrics import Metrics
from common.subscriber import ResultVerifier
from common.topology import Topology
from webhooks.deliveries import NewDelivery, WebhookDeliveries
from webhooks.endpoints import Endpoints

logger = logging.getLogger("paymq.webhooks")

#: Pause before connecting again after a loss: 0.5 s, doubling up to `reconnect_max_delay_s`.
RECONNECT_INITIAL_S = 0.5
#: Pause before storing an event's deliveries again while the store is unavailable, in whole
#: seconds of heartbeating waits: 1 s, doubling up to 30 s.
STORE_RETRY = BackoffPolicy(initial_s=1.0, cap_s=30.0, jitter=0.0)


class Intake:
    """What to do with one message, without the broker: store its deliveries, or refuse it."""

    def __init__(
        self,
        verifier: ResultVerifier,
        deliveries: WebhookDeliveries,
        endpoints: Callable[[], Endpoints],
        metrics: Metrics | None = None,
    ) -> None:
        self._verifier = verifier
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._metrics = metrics or Metrics()

    def take(self, message: InboundMessage) -> int:
        """The number of new deliveries stored; MessageRejected if the event cannot be trusted.
        StoreUnavailable (retryable) leaves the message unacked, to come back."""
        try:
            result = self._verifier.verify(message)
        except MessageRejected:
            self._metrics.webhook_events.labels("untrusted").inc()
            raise
        payment_id = None if result.payment_id is None else str(result.payment_id)
        event_id = str(result.event_id)
        endpoints = self._endpoints().matching(result.channel, result.status.value)
        added = self._deliveries.add(
            [
                NewDelivery(
                    event_id=event_id,
                    endpoint_id=endpoint.id,
                    payment_id=payment_id,
                    channel=result.channel,
                    status=result.status.value,
                    body=message.body,  # the signed bytes, exactly as the worker published them
                )
                for endpoint in endpoints
            ]
        )
        self._metrics.webhook_events.labels("stored").inc()
        logger.info(
            "%s %s: %s, %s",
            result.channel,
            result.status.value,
            counted(len(endpoints), "endpoint", "endpoints"),
            counted(added, "new delivery", "new deliveries"),
            extra={"payment_id": payment_id, "message_id": event_id},
        )
        return added


def counted(count: int, one: str, many: str) -> str:
    """`1 endpoint`, `2 endpoints`, `0 endpoints`."""
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class QueueConsumer:
    """Consumes the webhooks queue into an Intake until `stopping` is set, connecting again
    after a loss; `on_added` is told when new deliveries are stored."""

    url: str
    topology: Topology
    intake: Intake
    clock: Clock
    stopping: threading.Event
    on_added: Callable[[], None]
    prefetch: int = 50
    reconnect_max_delay_s: float = 30.0
    #: Set once the queue is declared: from then on every result event is kept for delivery.
    declared: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        reconnects = Backoff(
            BackoffPolicy(
                initial_s=RECONNECT_INITIAL_S, cap_s=self.reconnect_max_delay_s, jitter=0.0
            )
        )
        while not self.stopping.is_set():
            try:
                with BrokerAdmin(self.url, name="paymq-webhooks") as admin:
                    spec, binding = (
                        self.topology.webhooks_queue_spec(),
                        self.topology.webhooks_binding(),
                    )
                    admin.declare_queue(spec, binding)
                    self.declared.set()
                    reconnects.succeeded()
                    self._consume(admin)
            except BrokerUnavailable as exc:
                delay_s = reconnects.next_delay_s()
                logger.warning("broker unavailable (%s); connecting again in %.1f s", exc, delay_s)
                self.stopping.wait(delay_s)

    def _consume(self, admin: BrokerAdmin) -> None:
        for delivery in admin.deliveries(self.topology.webhooks_queue, prefetch=self.prefetch):
            if self.stopping.is_set():
                return  # unacked deliveries go back to the queue with the connection
            if delivery is not None:
                self._handle(admin, delivery)

    def _handle(self, admin: BrokerAdmin, delivery: Delivery) -> None:
        store_retries = Backoff(STORE_RETRY)
        while True:
            try:
                added = self.intake.take(delivery.message)
            except MessageRejected as exc:
                self._dead_letter(admin, delivery, exc)
                return
            except RetryableError as exc:
                delay_s = store_retries.next_delay_s()
                # Wait here, heartbeats going on, rather than give the event back: each return
                # to the queue counts against its delivery limit; a long outage would poison it.
                logger.warning(
                    "cannot store deliveries (%s); trying again in %.0f s",
                    exc.code,
                    delay_s,
                    extra={"message_id": delivery.message.message_id},
                )
                for _ in range(int(delay_s)):
                    if self.stopping.is_set():
                        return  # unacked: back to the queue when the connection closes
                    admin.pause(1.0)
                continue
            if added:
                self.on_added()
            admin.ack(delivery.tag)
            return

    def _dead_letter(self, admin: BrokerAdmin, delivery: Delivery, error: MessageRejected) -> None:
        """Never delivered: a copy with the reason to the dead-letter queue, else a plain
        reject (the queue dead-letters it, with the broker's reason only)."""
        logger.error(
            "result event refused, not delivered: %s (%s)",
            error.code,
            error.reason,
            extra={"message_id": delivery.message.message_id},
        )
        copy = dead_letter_copy(delivery.message, self.topology, error, self.clock.now_ms())
        try:
            admin.publish(copy)
        except PaymqError:
            admin.reject(delivery.tag)
            return
        admin.ack(delivery.tag)

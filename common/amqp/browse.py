"""Looking at a queue's messages without using up their deliveries: take them, decide, put
the rest back as fresh copies.

Used for the dead-letter queue. A quorum queue counts a delivery handed back (a requeue, a
closed channel; from RabbitMQ 4.3 a basic.reject only) against its delivery limit, and
RabbitMQ 4.x gives every quorum queue a limit of 20 by default, past which the message is
dropped: a browser that requeued what it looked at would lose a dead letter after about 20
looks. So nothing taken is ever requeued.
What the caller does not settle (`ack`) is put back as a copy: the same body and properties,
published to the same queue with a confirm, its routing key kept in a header (the default
exchange routes by queue name) and without the broker's count; only then is the delivery
taken acked. The copy starts with no deliveries.

A browser that stops between a copy's confirm and its ack leaves the message twice in the
queue, never lost; one whose connection is lost before everything is put back has the rest
returned by the broker, counted once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.spec import BasicProperties

from common.amqp.convert import inbound_from, node_parameters
from common.amqp.errors import broker_errors
from common.envelope import HEADER_ORIGINAL_ROUTING_KEY, InboundMessage
from common.errors import PaymqError, SetupError

logger = logging.getLogger("paymq.amqp")

#: Set by quorum queues on every delivery: the count of the delivery taken, not of the copy.
_DELIVERY_COUNT = "x-delivery-count"


@dataclass(frozen=True)
class Held:
    delivery_tag: int
    message: InboundMessage


@dataclass(frozen=True)
class _Taken:
    routing_key: str
    properties: BasicProperties
    body: bytes


def kept_headers(headers: Mapping[str, object], routing_key: str) -> dict[str, object]:
    """The headers of a message's copy: its own, without the broker's delivery count, with
    the routing key it was first given (a copy of a copy keeps the first)."""
    kept = {name: value for name, value in headers.items() if name != _DELIVERY_COUNT}
    kept.setdefault(HEADER_ORIGINAL_ROUTING_KEY, routing_key)
    return kept


def _copy_properties(taken: _Taken) -> BasicProperties:
    original = taken.properties
    return BasicProperties(
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        headers=kept_headers(original.headers or {}, taken.routing_key),
        delivery_mode=pika.DeliveryMode.Persistent,
        priority=original.priority,
        correlation_id=original.correlation_id,
        reply_to=original.reply_to,
        expiration=original.expiration,
        message_id=original.message_id,
        timestamp=original.timestamp,
        type=original.type,
        # user_id is left out: the broker refuses a publish whose user_id is not the
        # publishing user, and the browser's user need not be the one that first published.
        app_id=original.app_id,
    )


class QueueBrowser:
    def __init__(
        self, url: str, queue: str, *, name: str = "paymq-browse", connect_timeout_s: float = 10.0
    ) -> None:
        params = node_parameters(
            url, heartbeat_s=60, connect_timeout_s=connect_timeout_s, name=name
        )
        with broker_errors(connecting_to=url):
            self._connection = pika.BlockingConnection(params)
            self._channel = self._connection.channel()
        self._queue = queue
        self._taken: dict[int, _Taken] = {}
        self._confirming = False

    def __enter__(self) -> QueueBrowser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def take(self, limit: int) -> list[Held]:
        """Up to `limit` messages, held (unacked) until acked or put back.
        ConfigurationError if the queue does not exist, BrokerUnavailable if the connection
        is lost (what was held goes back to the queue)."""
        held: list[Held] = []
        with broker_errors(queue=self._queue):
            while len(held) < limit:
                method, properties, body = self._channel.basic_get(self._queue, auto_ack=False)
                if method is None:
                    break
                self._taken[method.delivery_tag] = _Taken(method.routing_key, properties, body)
                held.append(Held(method.delivery_tag, inbound_from(method, properties, body)))
        return held

    def ack(self, delivery_tag: int) -> None:
        """Settle a message taken: it leaves the queue for good."""
        with broker_errors():
            self._channel.basic_ack(delivery_tag)
        self._taken.pop(delivery_tag, None)

    def put_back(self) -> int:
        """Put every message taken and not acked back as a fresh copy, in the order taken
        (see the module's doc); how many. PublishFailed if the broker refuses a copy,
        BrokerUnavailable if the connection is lost: what is left returns to the queue."""
        put = 0
        with broker_errors(queue=self._queue):
            if self._taken and not self._confirming:
                self._channel.confirm_delivery()
                self._confirming = True
            for tag in sorted(self._taken):
                taken = self._taken[tag]
                self._channel.basic_publish(
                    "", self._queue, taken.body, _copy_properties(taken), mandatory=True
                )
                self._channel.basic_ack(tag)  # only once the copy is confirmed
                del self._taken[tag]
                put += 1
        return put

    def close(self) -> None:
        """Put back what was taken and not acked, then close. Should that fail, the broker
        returns what is left to the queue when the connection closes."""
        try:
            if self._taken and self._channel.is_open:
                self.put_back()
        except (PaymqError, SetupError) as exc:  # the queue gone (404) is a SetupError
            logger.warning(
                "%d messages not put back as copies (%s): the broker returns them to %s",
                len(self._taken),
                exc,
                self._queue,
            )
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError):
                if self._connection.is_open:
                    self._connection.close()

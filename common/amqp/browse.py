"""Looking at a queue's messages without losing any: take them, decide, give back the rest.

Used for the dead-letter queue: everything taken is either acked (after its replay was
confirmed elsewhere) or handed back to the queue when the browser closes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pika
import pika.exceptions

from common.amqp.admin import _broker_errors, _queue_must_exist
from common.amqp.convert import inbound_from, node_parameters
from common.amqp.nodes import unreachable
from common.envelope import InboundMessage
from common.errors import BrokerUnavailable


@dataclass(frozen=True)
class Held:
    delivery_tag: int
    message: InboundMessage


class QueueBrowser:
    def __init__(self, url: str, queue: str, *, connect_timeout_s: float = 10.0) -> None:
        params = node_parameters(
            url, heartbeat_s=60, connect_timeout_s=connect_timeout_s, name="paymq-browse"
        )
        try:
            self._connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(unreachable(url, repr(exc))) from None
        self._channel = self._connection.channel()
        self._queue = queue

    def __enter__(self) -> QueueBrowser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def take(self, limit: int) -> list[Held]:
        """Up to `limit` messages, held (unacked) until acked or the browser closes."""
        held: list[Held] = []
        with _broker_errors(), _queue_must_exist(self._queue):
            while len(held) < limit:
                method, properties, body = self._channel.basic_get(self._queue, auto_ack=False)
                if method is None:
                    break
                held.append(Held(method.delivery_tag, inbound_from(method, properties, body)))
        return held

    def ack(self, delivery_tag: int) -> None:
        self._channel.basic_ack(delivery_tag)

    def close(self) -> None:
        """Everything taken and not acked goes back to the queue."""
        with contextlib.suppress(pika.exceptions.AMQPError):
            if self._channel.is_open:
                self._channel.basic_nack(0, multiple=True, requeue=True)
            if self._connection.is_open:
                self._connection.close()

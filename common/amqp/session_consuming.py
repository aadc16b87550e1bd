"""The consuming side of AmqpSession (common/amqp/session.py): a connection of its own,
a channel with manual acks, deliveries identified by the channel they came from.

Publishing and consuming use two connections. RabbitMQ's memory and disk alarms block every
connection that publishes, acks included; on a connection of its own the consumer keeps
acking (and receiving heartbeats) while the publisher waits for the alarm to clear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from pika.spec import Basic, BasicProperties

from common.amqp.acks import AckBatcher
from common.amqp.convert import connection_parameters, inbound_from
from common.amqp.nodes import NodeRotation
from common.envelope import InboundMessage

if TYPE_CHECKING:
    from common.amqp.session import SessionOptions

logger = logging.getLogger("paymq.amqp")


@dataclass(frozen=True, slots=True)
class DeliveryToken:
    """Identifies a delivery on the channel it came from; useless after that channel closes."""

    generation: int
    delivery_tag: int


OnMessage = Callable[[InboundMessage, DeliveryToken], None]


@dataclass(frozen=True, slots=True)
class _ConsumeSpec:
    """What to consume, for the connection generation it was asked for."""

    queue: str
    prefetch: int
    on_message: OnMessage
    generation: int


class ConsumingSide:
    """AmqpSession's consuming half (a mixin): `__init__` sets up its own state; the
    annotations name what it uses of the session's."""

    _options: SessionOptions
    _nodes: NodeRotation
    _ioloop: IOLoop
    _connection: SelectConnection | None
    _generation: int
    _ready: bool
    _stopping: bool
    last_error: str | None
    _on_channel_closed: Callable[[Channel, Exception], None]
    _finish_stop_when_closed: Callable[[], None]

    def __init__(self) -> None:
        self._consume_connection: SelectConnection | None = None
        self._consume_channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._consume_spec: _ConsumeSpec | None = None
        self._deliver: Callable[..., None] | None = None
        self._paused = False
        self._acks = AckBatcher()
        self._ack_flush_due = False
        #: The broker confirmed the current consumer (basic.consume-ok); read from any thread.
        self.consuming = False

    def consume(self, queue: str, prefetch: int, on_message: OnMessage) -> None:
        """Start consuming `queue` with manual acks, on a connection of its own (see above)."""
        if self._connection is None or not self._ready:
            return  # not connected: session_ready will ask again
        spec = _ConsumeSpec(queue, prefetch, on_message, self._generation)
        o = self._options
        params = connection_parameters(
            self._nodes.current,
            heartbeat_s=o.heartbeat_s,
            connect_timeout_s=o.connect_timeout_s,
            name=f"{o.name} (consumer)",
        )

        def lost(_connection: SelectConnection, reason: BaseException) -> None:
            self._on_consume_connection_lost(spec.generation, reason)

        self._consume_connection = SelectConnection(
            params,
            on_open_callback=lambda connection: self._on_consume_connection_open(spec, connection),
            on_open_error_callback=lost,
            on_close_callback=lost,
            custom_ioloop=self._ioloop,
        )

    def _stale(self, spec: _ConsumeSpec, connection: Any) -> bool:
        """The publishing connection went while this consumer's was opening: close it, for its
        deliveries must never be acked with the next generation's tags."""
        if spec.generation == self._generation and not self._stopping:
            return False
        if connection.is_open:
            connection.close()
        return True

    def _on_consume_connection_open(self, spec: _ConsumeSpec, connection: SelectConnection) -> None:
        if not self._stale(spec, connection):
            connection.channel(on_open_callback=lambda ch: self._on_consume_channel_open(spec, ch))

    def _on_consume_channel_open(self, spec: _ConsumeSpec, channel: Channel) -> None:
        if self._stale(spec, channel.connection):
            return
        self._consume_channel = channel
        self._acks = AckBatcher()  # tags restart at 1 on every channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_cancel_callback(self._on_broker_cancel)

        def deliver(
            _ch: Channel, method: Basic.Deliver, props: BasicProperties, body: bytes
        ) -> None:
            self._acks.delivered(method.delivery_tag)
            spec.on_message(
                inbound_from(method, props, body),
                DeliveryToken(spec.generation, method.delivery_tag),
            )

        self._consume_spec, self._deliver = spec, deliver

        def start(_frame: Any) -> None:
            if not self._paused:
                self._basic_consume(spec, channel)

        channel.basic_qos(prefetch_count=spec.prefetch, callback=start)

    def _basic_consume(self, spec: _ConsumeSpec, channel: Channel) -> None:
        def consuming(_frame: Any) -> None:
            if spec.generation == self._generation:
                self.consuming = True
                logger.info("consuming %s (prefetch %d)", spec.queue, spec.prefetch)

        self._consumer_tag = channel.basic_consume(
            spec.queue, self._deliver, auto_ack=False, callback=consuming
        )

    def pause_consumer(self) -> None:
        """Take no more deliveries (basic.cancel) until `resume_consumer`, on this connection
        and the next ones; those already received are still settled."""
        self._paused = True
        self.consuming = False
        self.cancel_consumer(lambda: None)

    def resume_consumer(self) -> None:
        self._paused = False
        channel, spec = self._consume_channel, self._consume_spec
        if (
            channel is None
            or not channel.is_open
            or spec is None
            or spec.generation != self._generation
            or self._consumer_tag is not None
            or self._stopping
        ):
            return  # not connected (the next connection consumes), or consuming already
        self._basic_consume(spec, channel)

    def _on_consume_connection_lost(self, generation: int, reason: BaseException) -> None:
        if generation == self._generation:
            self._consume_connection = self._consume_channel = None
        if self._stopping:
            self._finish_stop_when_closed()
            return
        if generation != self._generation:
            return  # the pair was already torn down and reconnected
        logger.warning("consumer connection lost: %s; reconnecting", reason or "closed")
        self.last_error = str(reason)
        # Both connections go and come back together: one generation of delivery tokens.
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def cancel_consumer(self, on_cancelled: Callable[[], None]) -> None:
        channel, tag = self._consume_channel, self._consumer_tag
        if channel is None or tag is None or not channel.is_open:
            on_cancelled()
            return
        self._consumer_tag = None
        channel.basic_cancel(tag, callback=lambda _frame: on_cancelled())

    def ack(self, token: DeliveryToken) -> bool:
        """Ack on the delivery's own channel, at the end of this loop turn together with the
        turn's other acks; False if that channel is gone (the broker will redeliver)."""
        if token.generation != self._generation or self._open_consume_channel() is None:
            return False
        self._acks.finished(token.delivery_tag)
        if not self._ack_flush_due:
            self._ack_flush_due = True
            self._ioloop.call_later(0, self._flush_acks)
        return True

    def _flush_acks(self) -> None:
        self._ack_flush_due = False
        channel = self._open_consume_channel()
        if channel is None or not self._acks.pending:
            return
        up_to, singles = self._acks.flush()
        if up_to is not None:
            channel.basic_ack(up_to, multiple=True)
        for tag in singles:
            channel.basic_ack(tag)

    def reject(self, token: DeliveryToken) -> bool:
        """Return the delivery to its queue as failed: basic.reject, which every RabbitMQ
        counts towards the queue's delivery limit (4.3 and later do not count a nack)."""
        channel = self._open_consume_channel()
        if token.generation != self._generation or channel is None:
            return False
        self._acks.forget(token.delivery_tag)
        channel.basic_reject(token.delivery_tag, requeue=True)
        return True

    def _open_consume_channel(self) -> Channel | None:
        """The consuming channel, if frames can still go out on it. While a lost connection
        closes its channels one by one, a channel may still say it is open on a connection that
        is not: callbacks of the first channel's close (failed confirms) must not write."""
        channel, connection = self._consume_channel, self._consume_connection
        if channel is None or not channel.is_open or connection is None or not connection.is_open:
            return None
        return channel

    def _on_broker_cancel(self, _frame: Any) -> None:
        logger.warning("the broker cancelled the consumer; reconnecting")
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

"""One broker session that survives the broker: connect, open channels, reconnect with back-off.

Runs pika's asynchronous SelectConnection on an IOLoop that outlives each connection, so other
threads can always hand work to it with `call_threadsafe` (acks must be sent from this thread,
on the channel the message came from). Heartbeats are answered by the loop itself: no callback
here ever blocks, and slow work runs in the caller's threads.

State machine:

    connecting -> open (publish channel in confirm mode) -> [consuming, on a second connection]
    -> either connection closed: both closed -> back-off -> connecting ...
                                             \\-> stopped (stop())

Any channel closed under us (consumer_timeout, a 404 on publish, a queue deleted) or a broker
cancel closes the whole connection, so the session reconnects instead of becoming a consumer
that receives nothing. CONNECTION_FORCED (broker restart, close_all_connections) reconnects too.

Dead links: RabbitMQ sends a heartbeat every half interval, so a connection that has received
nothing for two intervals is presumed dead and torn down (pika's own check would take up to
two intervals plus ten seconds). A link that flaps, with connections dying soon after they
open, keeps the back-off (common/backoff.py) growing: only a connection that stayed up for a
while resets it, so a flapping network does not return every in-flight delivery several times
a second.

Clusters: given several nodes (common/amqp/nodes.py), the session takes them in an order of its
own and, whenever its connections are lost, opens the next pair on the next node. Trying the
next node costs only a short pause; the back-off grows once every node has failed in turn.
Both connections of a pair are on the same node.

The consuming side is in common/amqp/session_consuming.py, the publishing side in
common/amqp/session_publishing.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pika.adapters.select_connection import IOLoop, SelectConnection
from pika.channel import Channel
from pika.exceptions import AMQPHeartbeatTimeout

from common.amqp.confirms import ConfirmTracker
from common.amqp.convert import connection_parameters
from common.amqp.linkwatch import LinkWatch
from common.amqp.nodes import NodeRotation, redact
from common.amqp.session_consuming import ConsumingSide, DeliveryToken, OnMessage
from common.amqp.session_publishing import PublishingSide
from common.backoff import Backoff, BackoffPolicy
from common.errors import PublishFailed

__all__ = ["AmqpSession", "DeliveryToken", "OnMessage", "SessionListener", "SessionOptions"]

logger = logging.getLogger("paymq.amqp")

#: Pause before trying the next node of a cluster after losing one (jittered down to half).
NEXT_NODE_DELAY_S = 0.2
_NEXT_NODE = BackoffPolicy(initial_s=NEXT_NODE_DELAY_S, cap_s=NEXT_NODE_DELAY_S, jitter=0.5)
#: Pause once every node has failed in turn, doubling up to `reconnect_max_delay_s`.
RECONNECT_INITIAL_S = 0.5


class SessionListener(Protocol):
    def session_ready(self) -> None:
        """The connection and the publish channel are open (runs on the I/O thread)."""

    def session_lost(self, reason: str) -> None:
        """The connection is gone; unconfirmed publishes have already failed."""


@dataclass(frozen=True)
class SessionOptions:
    #: One AMQP URL, or a comma-separated list of a cluster's nodes.
    url: str
    name: str
    heartbeat_s: int = 30
    connect_timeout_s: float = 10.0
    reconnect_max_delay_s: float = 30.0


class AmqpSession(ConsumingSide, PublishingSide):
    def __init__(self, options: SessionOptions, listener: SessionListener) -> None:
        ConsumingSide.__init__(self)
        PublishingSide.__init__(self)
        self._options = options
        self._listener = listener
        self._nodes = NodeRotation(options.url)
        self._ioloop = IOLoop()
        self._connection: SelectConnection | None = None  # publishing
        self._generation = 0
        self._ready = False
        self._stopping = False
        self._stopped = False
        #: Only a connection that stays up resets the back-off (see the module's docstring).
        self._reconnects = Backoff(
            BackoffPolicy(
                initial_s=RECONNECT_INITIAL_S,
                cap_s=options.reconnect_max_delay_s,
                jitter=0.5,
                stable_s=max(10.0, 2.0 * options.heartbeat_s),
            )
        )
        self._links = LinkWatch(limit_s=2.0 * options.heartbeat_s)
        self.last_error: str | None = None

    # --- any thread ---------------------------------------------------------------------------

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        self._ioloop.add_callback_threadsafe(callback)

    def stop(self) -> None:
        """Close the connection and make `run()` return. Safe from any thread."""
        self._ioloop.add_callback_threadsafe(self._begin_stop)

    def run(self) -> None:
        """Connect and run the I/O loop in this thread until `stop()`."""
        self._ioloop.add_callback_threadsafe(self._connect)
        self._ioloop.add_callback_threadsafe(self._watch_links)
        self._ioloop.start()
        self._ioloop.close()

    # --- I/O thread only ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def generation(self) -> int:
        return self._generation

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> object:
        return self._ioloop.call_later(delay_s, callback)

    # --- lifecycle ----------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._stopping:
            self._ioloop.stop()
            return
        o = self._options
        params = connection_parameters(
            self._nodes.current,
            heartbeat_s=o.heartbeat_s,
            connect_timeout_s=o.connect_timeout_s,
            name=o.name,
        )
        self._connection = SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_open_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=self._ioloop,
        )

    def _on_connection_open(self, connection: SelectConnection) -> None:
        def opened(channel: Channel) -> None:
            self._publish_channel = channel
            self._confirm_mode(channel, self._on_confirm_mode)

        connection.channel(on_open_callback=opened)

    def _on_confirm_mode(self, tracker: ConfirmTracker) -> None:
        self._confirms = tracker
        self._ready = True
        self.last_error = None
        self._reconnects.succeeded()
        logger.info("connected to %s", redact(self._nodes.current))
        self._send_outbox()
        self._listener.session_ready()

    # --- dead links -----------------------------------------------------------------------

    def _watch_links(self) -> None:
        """Tear down a connection that has received nothing for two heartbeat intervals."""
        connections = [
            c for c in (self._connection, self._consume_connection) if c is not None and c.is_open
        ]
        counts = [(connection, connection.bytes_received) for connection in connections]
        for connection, silent_s in self._links.silent(counts, time.monotonic()):
            logger.warning("nothing from the broker for %.1f s: presuming the link dead", silent_s)
            # As pika's own heartbeat check does: no graceful close over a dead link.
            connection._terminate_stream(  # type: ignore[attr-defined]
                AMQPHeartbeatTimeout(f"no frame from the broker for {silent_s:.1f} s")
            )
        if not self._stopped:
            self._ioloop.call_later(self._options.heartbeat_s / 4, self._watch_links)

    def _on_channel_closed(self, channel: Channel, reason: Exception) -> None:
        if self._retiring is not None and channel is self._retiring[0]:
            self._drop_retiring(PublishFailed(f"channel closed before confirm: {reason}"))
            return
        current = (
            channel is self._publish_channel
            or channel is self._consume_channel
            or channel is self._renewal
        )
        if channel is self._publish_channel:
            self._publish_channel = None
        if channel is self._consume_channel:
            self._consume_channel = None
        if channel is self._renewal:
            self._renewal = None
        if self._stopping or not current:
            # A channel of connections already torn down closing late (the consumer's closes
            # after the publisher's): acting on it would tear down their successors.
            return
        # Nothing more goes out on this connection: new publishes wait in the outbox.
        self._ready = False
        logger.warning("channel %s closed: %s; reconnecting", channel.channel_number, reason)
        self.last_error = str(reason)
        self._confirms.fail_all(PublishFailed(f"channel closed before confirm: {reason}"))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _on_connection_open_error(
        self, _connection: SelectConnection, error: BaseException
    ) -> None:
        self.last_error = str(error) or type(error).__name__
        self._after_close(f"cannot connect to {redact(self._nodes.current)}: {self.last_error}")

    def _on_connection_closed(self, _connection: SelectConnection, reason: BaseException) -> None:
        self._after_close(f"connection closed: {reason}")

    def _after_close(self, reason: str) -> None:
        self._ready = False
        self.consuming = False
        self._connection = None
        self._generation += 1
        self._consume_channel = None
        self._consumer_tag = None
        self._publishing_lost(reason)
        consumer = self._consume_connection
        if consumer is not None and consumer.is_open:
            consumer.close()  # its deliveries return to the queue; their tokens are stale now
        # One still opening is left to finish: closing it mid-handshake trips an assertion
        # inside pika that ends the I/O loop (seen on a flapping link). Once open it finds
        # its generation stale and closes itself (_stale).
        if self._stopping:
            self._finish_stop_when_closed()
            return
        self._consume_connection = None
        self._listener.session_lost(reason)
        delay_s = self._reconnect_delay_s()
        following = self._nodes.advance()
        elsewhere = f" to {redact(following)}" if len(self._nodes) > 1 else ""
        logger.warning("%s; reconnecting%s in %.1f s", reason, elsewhere, delay_s)
        self._ioloop.call_later(delay_s, self._connect)

    def _reconnect_delay_s(self) -> float:
        """A short pause before trying the next node of a cluster; once every node has failed
        in turn, exponential back-off with jitter, so a restarted broker is not hit by all
        clients at once."""
        failures, nodes = self._reconnects.failed(), len(self._nodes)
        if failures % nodes:
            return _NEXT_NODE.delay_s(1)
        return self._reconnects.policy.delay_s(failures // nodes)

    def _begin_stop(self) -> None:
        self._flush_acks()  # finished payments are acked before the connection closes
        self._stopping = True
        for connection in (self._consume_connection, self._connection):
            if connection is not None and connection.is_open:
                connection.close()
        self._finish_stop_when_closed()

    def _finish_stop_when_closed(self) -> None:
        """Stop the loop once neither connection is open or closing (acks and closes sent)."""
        for connection in (self._consume_connection, self._connection):
            if connection is not None and (connection.is_open or connection.is_closing):
                return
        self._finish_stop()

    def _finish_stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._publishing_stopped()
        self._ioloop.stop()

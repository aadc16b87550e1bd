"""A stub of the broker session the consumer runs on (workers/session.py's ConsumerSession): in
memory, no sockets. The test plays the broker, and turns the I/O loop.

    stub = StubSession()
    consumer = Consumer(stub.attach, options, handle)
    stub.connect()                           # session_ready: the consumer starts consuming
    token = stub.deliver(message)            # the handler runs on the consumer's pool
    [publish] = stub.wait_for_publishes(1)   # turn the loop until the result is published
    publish.confirm()                        # or nack(), return_unroutable(), lose_connection()
    assert stub.acks == [token]

The I/O loop the test turns, in virtual time, is loop.py's; the publishes it answers are
publishes.py's.

It keeps the rules of the real session and broker that the consumer's own rules rest on:
- delivery tags count from 1 on each connection; a token of an earlier connection (generation)
  acks and rejects nothing, and `ack`/`reject` answer False, as AmqpSession's do;
- the broker delivers only to a consumer it has (asked for, not cancelled nor paused), and never
  more than `prefetch` unacked deliveries;
- acking or rejecting a delivery the broker does not hold (a second time, say) is a channel
  error in AMQP (PRECONDITION_FAILED): here it fails the test with StubProtocolError;
- a publish stays pending until the test confirms, nacks or returns it, or the connection goes:
  then every pending publish fails (PublishFailed) and every unacked delivery goes back to its
  queue (`requeued`), to be redelivered;
- while disconnected, publishes wait, and go out on the next connection.

Simpler than the real thing: an ack or a reject is recorded when the consumer asks for it (the
real session sends a loop turn's acks together at the turn's end: common/amqp/acks.py), and the
broker confirms a basic.consume at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from common.amqp.confirms import OnConfirm
from common.amqp.session import DeliveryToken, OnMessage, SessionListener
from common.envelope import InboundMessage, OutboundMessage
from common.errors import PublishFailed
from tests.stubs.loop import StubLoop
from tests.stubs.publishes import Answer, StubProtocolError, StubPublish
from workers.session import ConsumerSession


@dataclass(frozen=True)
class _Consumer:
    queue: str
    prefetch: int
    on_message: OnMessage


class StubSession(StubLoop):
    def __init__(self) -> None:
        super().__init__()
        self._listener: SessionListener | None = None
        self._generation = 0
        self._ready = False
        #: The consuming connection is open (acks and rejects can go out on it).
        self._consume_open = False
        self._consumer: _Consumer | None = None
        self._paused = False
        self._next_tag = 1
        self._unacked: dict[int, InboundMessage] = {}
        self._outbox: deque[tuple[OutboundMessage, OnConfirm]] = deque()
        self._stop_asked = False
        self.consuming = False
        self.stopped = False
        #: What the broker saw, in order.
        self.consumes: list[tuple[str, int]] = []
        self.publishes: list[StubPublish] = []
        self.acks: list[DeliveryToken] = []
        self.rejects: list[DeliveryToken] = []
        #: Deliveries back in their queue (rejected, or unacked when a connection went).
        self.requeued: list[InboundMessage] = []

    def attach(self, listener: SessionListener) -> ConsumerSession:
        """The consumer's session factory: `Consumer(stub.attach, ...)`."""
        if self._listener is not None:
            raise StubProtocolError("a session serves one listener")
        self._listener = listener
        return self  # mypy checks here that the stub is a ConsumerSession

    # --- ConsumerSession: any thread ----------------------------------------------------------

    def stop(self) -> None:
        self._stop_asked = True
        self._handed.put(self._stop)

    def run(self) -> None:
        """Connect (unless the test has, or a stop is asked), then serve the loop until stopped."""
        if not self._ready and not self._stop_asked:
            self.connect()
        self.run_until(lambda: self.stopped)

    # --- ConsumerSession: I/O thread ----------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def generation(self) -> int:
        return self._generation

    def publish(self, message: OutboundMessage, on_confirm: OnConfirm) -> None:
        if not self._ready:
            self._outbox.append((message, on_confirm))
            return
        self.publishes.append(StubPublish(message, self._generation, on_confirm))

    def consume(self, queue: str, prefetch: int, on_message: OnMessage) -> None:
        if not self._ready:
            return  # as AmqpSession: session_ready will ask again
        self._consumer = _Consumer(queue, prefetch, on_message)
        self._consume_open = True
        self.consumes.append((queue, prefetch))
        self.consuming = not self._paused

    def pause_consumer(self) -> None:
        self._paused = True
        self.cancel_consumer(lambda: None)

    def resume_consumer(self) -> None:
        self._paused = False
        if self._consumer is not None and self._consume_open and not self._stop_asked:
            self.consuming = True

    def cancel_consumer(self, on_cancelled: Callable[[], None]) -> None:
        if not self.consuming:
            on_cancelled()
            return
        self.consuming = False
        self.call_later(0.0, on_cancelled)  # basic.cancel-ok comes on a later turn

    def ack(self, token: DeliveryToken) -> bool:
        if not self._holds(token):
            return False
        del self._unacked[token.delivery_tag]
        self.acks.append(token)
        return True

    def reject(self, token: DeliveryToken) -> bool:
        if not self._holds(token):
            return False
        self.requeued.append(self._unacked.pop(token.delivery_tag))
        self.rejects.append(token)
        return True

    def _holds(self, token: DeliveryToken) -> bool:
        """The delivery can be settled on its channel: False if that channel is gone."""
        if token.generation != self._generation or not self._consume_open:
            return False
        if token.delivery_tag not in self._unacked:
            raise StubProtocolError(
                f"delivery tag {token.delivery_tag} is not unacked on this channel"
                " (a broker closes the channel: PRECONDITION_FAILED)"
            )
        return True

    # --- the broker's side, played by the test (on the I/O thread) ----------------------------

    def connect(self) -> None:
        """A connection opens: what waited in the outbox is published, and the listener hears
        session_ready."""
        if self._ready or self.stopped:
            raise StubProtocolError("connect: the session is connected or stopped already")
        self._ready = True
        self._next_tag = 1  # tags restart on every channel
        outbox, self._outbox = self._outbox, deque()
        for message, on_confirm in outbox:
            self.publish(message, on_confirm)
        self._session_listener.session_ready()

    def deliver(self, message: InboundMessage) -> DeliveryToken:
        """The broker delivers `message` to the consumer (whose handler then runs on its pool)."""
        consumer = self._consumer
        if consumer is None or not self.consuming:
            raise StubProtocolError("the broker has no consumer to deliver to")
        if len(self._unacked) >= consumer.prefetch:
            raise StubProtocolError(f"prefetch window full: {consumer.prefetch} unacked")
        token = DeliveryToken(self._generation, self._next_tag)
        self._next_tag += 1
        self._unacked[token.delivery_tag] = message
        consumer.on_message(message, token)
        return token

    def lose_consumer_connection(self) -> None:
        """The consuming connection dies first: its deliveries go back to the queue, and acks
        can no longer go out, while confirms may still come on the publishing connection, which
        the session closes next (end with `lose_connection`)."""
        self._consume_open = False
        self.consuming = False
        self._requeue_unacked()

    def lose_connection(self, reason: str = "connection reset by peer") -> None:
        """Both connections are gone: tokens of this connection are void, unacked deliveries go
        back to their queue, pending publishes fail, and the listener hears session_lost."""
        self._disconnect(PublishFailed(f"connection closed: {reason} (before confirm)"))
        self._session_listener.session_lost(reason)

    # --- the loop -----------------------------------------------------------------------------

    @property
    def pending(self) -> list[StubPublish]:
        """Publishes the broker has not answered yet."""
        return [p for p in self.publishes if p.answer is Answer.PENDING]

    def wait_for_publishes(self, count: int) -> list[StubPublish]:
        """Turn the loop until `count` publishes are pending; returns the pending ones."""
        self.run_until(lambda: len(self.pending) >= count)
        return self.pending

    # --- internals ----------------------------------------------------------------------------

    @property
    def _session_listener(self) -> SessionListener:
        if self._listener is None:
            raise StubProtocolError("no listener: pass `stub.attach` to the consumer")
        return self._listener

    def _requeue_unacked(self) -> None:
        self.requeued.extend(self._unacked.values())
        self._unacked.clear()

    def _disconnect(self, error: PublishFailed) -> None:
        # As AmqpSession._after_close: void the tokens first, then fail what is pending.
        self._ready = False
        self._consume_open = False
        self.consuming = False
        self._consumer = None
        self._generation += 1
        self._requeue_unacked()
        for publish in self.pending:
            publish.fail(error)

    def _stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._disconnect(PublishFailed("session stopped before confirm"))
        outbox, self._outbox = self._outbox, deque()
        for _message, on_confirm in outbox:
            on_confirm(PublishFailed("session stopped before the message was sent"))

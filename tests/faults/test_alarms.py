"""Memory and disk alarms block every connection that publishes, acks and all. A worker's
session consumes on a connection of its own, so it keeps acking while its publisher waits.

Runs on the suite's private node: an alarm there blocks nothing but this test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest

from common.amqp.session import AmqpSession, DeliveryToken, SessionOptions
from common.envelope import InboundMessage, OutboundMessage
from paymq_tools.chaos.node import PrivateBroker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


class Listener:
    """Consumes `queue` once connected and keeps the first delivery's token."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.session: AmqpSession | None = None
        self.delivered = threading.Event()
        self.token: DeliveryToken | None = None

    def session_ready(self) -> None:
        assert self.session is not None
        self.session.consume(self.queue, 1, self._on_message)

    def session_lost(self, reason: str) -> None:
        pass

    def _on_message(self, _message: InboundMessage, token: DeliveryToken) -> None:
        self.token = token
        self.delivered.set()


@pytest.fixture
def queue(broker: PrivateBroker) -> Iterator[str]:
    """A queue holding one message, published before any alarm."""
    name = f"alarm-test-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.queue_declare(name, durable=True)
    channel.confirm_delivery()
    channel.basic_publish("", name, b"waiting", pika.BasicProperties(delivery_mode=2))
    yield name
    channel.queue_delete(name)
    connection.close()


@pytest.fixture
def session(broker: PrivateBroker, queue: str) -> Iterator[tuple[AmqpSession, Listener]]:
    listener = Listener(queue)
    session = AmqpSession(SessionOptions(url=broker.url, name="alarm-test"), listener)
    listener.session = session
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    try:
        yield session, listener
    finally:
        session.stop()
        thread.join(timeout=30)


@pytest.mark.parametrize(
    ("alarm", "clear"),
    [
        pytest.param(
            lambda b: b.set_memory_high_watermark(0.0000001),
            lambda b: b.set_memory_high_watermark(0.4),
            id="memory",
        ),
        pytest.param(
            lambda b: b.set_disk_free_limit("1000000GB"),
            lambda b: b.set_disk_free_limit("50MB"),
            id="disk",
        ),
    ],
)
def test_the_consumer_acks_while_an_alarm_blocks_the_publisher(
    broker: PrivateBroker,
    queue: str,
    session: tuple[AmqpSession, Listener],
    alarm: Callable[[PrivateBroker], None],
    clear: Callable[[PrivateBroker], None],
) -> None:
    amqp, listener = session
    # Given a session holding an unacked delivery
    assert listener.delivered.wait(30), "the message was not delivered"
    assert _depth(broker, queue) == (0, 1)
    confirmed = threading.Event()
    alarm(broker)
    try:
        # When, under the alarm, it publishes (its publishing connection gets blocked) and
        # then acks the delivery
        def publish_then_ack() -> None:
            amqp.publish(_message(queue), lambda _error: confirmed.set())
            assert listener.token is not None
            amqp.ack(listener.token)

        amqp.call_threadsafe(publish_then_ack)

        # Then the ack reaches the broker while the alarm is still on
        deadline = time.monotonic() + 30
        while _depth(broker, queue) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _depth(broker, queue) == (0, 0), "the ack did not get through the alarm"
        # and the publish is held back, not lost
        assert not confirmed.is_set()
    finally:
        clear(broker)
    # When the alarm clears, the publish is confirmed
    assert confirmed.wait(30), "the publish was not confirmed after the alarm cleared"


def _message(queue: str) -> OutboundMessage:
    return OutboundMessage(
        exchange="",
        routing_key=f"{queue}-elsewhere",
        body=b"published under the alarm",
        message_id=str(uuid.uuid4()),
        message_type="test",
        headers={},
        mandatory=False,
    )


def _depth(broker: PrivateBroker, queue: str) -> tuple[int, int]:
    [depth] = [d for d in broker.queue_depths(queue) if d.name == queue]
    return depth.ready, depth.unacked

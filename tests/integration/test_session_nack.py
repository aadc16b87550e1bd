"""A nack renews the session's publish channel, on the same connection.

RabbitMQ 3.10 keeps nacking every publish on a channel whose first publish to a quorum queue
came just after that queue's leader node died (docs/faults.md, "A cluster"): a client must not
keep publishing on a channel that nacked. Here the nack comes from a full queue with
reject-publish overflow, which the local broker gives on demand.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from common.amqp.admin import BrokerAdmin
from common.amqp.session import AmqpSession, SessionOptions
from common.envelope import OutboundMessage
from common.errors import PaymqError, PublishFailed

pytestmark = pytest.mark.integration


class Listener:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.lost: list[str] = []

    def session_ready(self) -> None:
        self.ready.set()

    def session_lost(self, reason: str) -> None:
        self.lost.append(reason)


@pytest.fixture
def queues(amqp_url: str) -> Iterator[tuple[str, str]]:
    """A queue that holds one message and refuses more (a classic queue: a quorum queue lets
    its length pass the limit by one before it refuses), and one that takes anything."""
    full, open_ = f"nack-full-{uuid.uuid4().hex[:8]}", f"nack-open-{uuid.uuid4().hex[:8]}"
    with BrokerAdmin(amqp_url) as admin:
        channel = admin._channel  # a test's own queues: no paymq topology to declare them
        channel.queue_declare(
            full,
            durable=True,
            arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
        )
        channel.queue_declare(open_, durable=True)
    yield full, open_
    with BrokerAdmin(amqp_url) as admin:
        admin.delete_queue(full)
        admin.delete_queue(open_)


@pytest.fixture
def session(amqp_url: str) -> Iterator[tuple[AmqpSession, Listener]]:
    listener = Listener()
    amqp = AmqpSession(SessionOptions(url=amqp_url, name="nack-test"), listener)
    thread = threading.Thread(target=amqp.run, daemon=True)
    thread.start()
    assert listener.ready.wait(30), "no connection"
    try:
        yield amqp, listener
    finally:
        amqp.stop()
        thread.join(timeout=30)


def _publish(amqp: AmqpSession, queue: str) -> PaymqError | None:
    confirmed: Future[PaymqError | None] = Future()
    message = OutboundMessage(
        exchange="",
        routing_key=queue,
        body=b"{}",
        message_id=str(uuid.uuid4()),
        message_type="test",
        headers={},
        mandatory=True,
    )
    amqp.call_threadsafe(lambda: amqp.publish(message, confirmed.set_result))
    return confirmed.result(timeout=30)


def test_a_nack_moves_the_next_publishes_to_a_new_channel_without_reconnecting(
    session: tuple[AmqpSession, Listener], queues: tuple[str, str], amqp_url: str
) -> None:
    amqp, listener = session
    full, open_ = queues
    # Given a session whose publish fills a queue
    assert _publish(amqp, full) is None
    # When its next publish there is refused (nack)
    refused = _publish(amqp, full)
    assert isinstance(refused, PublishFailed)
    assert "nack" in str(refused)
    # Then it publishes on a new channel of the same connection: confirmed, no reconnection
    assert _publish(amqp, open_) is None
    assert amqp.channels_renewed == 1
    assert listener.lost == []
    with BrokerAdmin(amqp_url) as admin:
        assert admin.stats(open_).messages == 1
    # and a burst of nacks renews it at most once a second, still without reconnecting
    for _ in range(5):
        assert isinstance(_publish(amqp, full), PublishFailed)
    assert amqp.channels_renewed <= 2
    assert _publish(amqp, open_) is None
    assert listener.lost == []

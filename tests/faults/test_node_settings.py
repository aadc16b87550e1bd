"""Settings of the private node that scenarios change for their run (a short consumer timeout,
a short channel tick), and give back afterwards."""

from __future__ import annotations

import time
import uuid

import pika
import pytest

from paymq_tools.chaos.node import PrivateBroker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

SHORT = {"consumer_timeout": 2000, "channel_tick_interval": 200}


def test_a_short_consumer_timeout_closes_a_channel_opened_under_it(broker: PrivateBroker) -> None:
    queue = f"timeout-test-{uuid.uuid4().hex[:8]}"
    before = {key: broker.app_setting(key) for key in SHORT}
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        with broker.app_settings(SHORT):
            # Given a channel opened under a 2 s consumer timeout, holding an unacked delivery
            channel = connection.channel()
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            channel.basic_publish("", queue, b"held", pika.BasicProperties(delivery_mode=2))
            delivered: list[float] = []
            channel.basic_consume(queue, lambda *_args: delivered.append(time.monotonic()))
            # When nobody acks it
            deadline = time.monotonic() + 30
            while channel.is_open and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.1)
            # Then the broker closes the channel once the timeout has passed
            assert not channel.is_open, "the consumer timeout did not close the channel"
            assert 2.0 <= time.monotonic() - delivered[0] < 10.0
    finally:
        cleanup = connection.channel()
        cleanup.queue_delete(queue)
        connection.close()
    # and the node's settings are as they were
    assert {key: broker.app_setting(key) for key in SHORT} == before


def test_setting_names_cannot_smuggle_code_into_eval(broker: PrivateBroker) -> None:
    with pytest.raises(ValueError, match="not a RabbitMQ setting"):
        broker.set_app_setting("x, 1), halt(", 1)

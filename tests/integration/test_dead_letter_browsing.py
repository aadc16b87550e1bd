"""Looking at the dead-letter queue spends none of a message's deliveries, on both ways a
quorum queue counts them: RabbitMQ 3.10 (no delivery limit unless one is set) and RabbitMQ 4.0
to 4.2, which give every quorum queue a delivery limit of 20 and drop a message past it. 4.x
does not run here: its default is reproduced on 3.10 by declaring the dead-letter queue with
`x-delivery-limit: 20` (the control test below shows such a queue does drop a message
requeued 21 times, as 4.x would)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from common.amqp.admin import BrokerAdmin
from common.amqp.browse import QueueBrowser
from common.settings import Settings
from common.topology import BindingSpec, QueueSpec
from paymq.dlq import Selection, list_dead_letters, replay_dead_letters, show_dead_letter
from tests.integration.helpers import publish_dead_letter

pytestmark = pytest.mark.integration

#: The two ways the broker counts: 3.10's (no limit), and 4.0-4.2's default limit of 20.
COUNTING = {
    "rabbitmq-3.10": {},
    "rabbitmq-4.x-default-limit-20": {"x-delivery-limit": 20},
}
LOOKS = 50


@pytest.fixture(params=COUNTING.values(), ids=COUNTING.keys())
def dead_letters(
    request: pytest.FixtureRequest, settings: Settings, admin: BrokerAdmin
) -> Iterator[Settings]:
    """The test's topology, its dead-letter queue declared with the counting under test."""
    topology = settings.broker.topology()
    admin.declare(topology)
    spec = next(q for q in topology.queues() if q.name == topology.dead_letter_queue)
    admin.delete_queue(spec.name)
    admin.declare_queue(
        QueueSpec(spec.name, {**spec.arguments, **request.param}),
        BindingSpec(spec.name, topology.dead_letter_exchange, ""),
    )
    yield settings
    admin.delete(topology)


def test_fifty_looks_at_a_dead_letter_leave_it_in_place_with_no_delivery_spent(
    dead_letters: Settings, admin: BrokerAdmin, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one dead letter
    message = publish_dead_letter(dead_letters, admin)
    queue = dead_letters.broker.topology().dead_letter_queue
    # When an operator looks at it 50 times, with `dlq list` and `dlq show` in turn
    for look in range(LOOKS):
        if look % 2:
            assert show_dead_letter(dead_letters, message.message_id) == 0
        else:
            assert list_dead_letters(dead_letters, as_json=True) == 0
    # Then the last look still lists it, on its channel, with its reason
    capsys.readouterr()
    list_dead_letters(dead_letters, as_json=True)
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["message_id"] == message.message_id
    assert listed["channel"] == "card"
    assert listed["code"] == "unknown_key"
    # and the queue holds it once, the same bytes and signed headers, no delivery spent
    assert admin.stats(queue).messages == 1
    with QueueBrowser(dead_letters.broker.amqp_url, queue) as browser:
        [held] = browser.take(10)
    kept = held.message
    assert kept.message_id == message.message_id
    assert kept.body == message.body
    assert {name: kept.headers[name] for name in message.headers} == dict(message.headers)
    assert kept.headers.get("x-delivery-count", 0) == 0
    assert kept.original_routing_key == "card"


def test_a_dead_letter_looked_at_fifty_times_replays_to_its_channel(
    dead_letters: Settings, admin: BrokerAdmin
) -> None:
    # Given a dead letter looked at 50 times
    message = publish_dead_letter(dead_letters, admin)
    topology = dead_letters.broker.topology()
    for _ in range(LOOKS):
        assert show_dead_letter(dead_letters, message.message_id) == 0
    # When it is replayed
    assert replay_dead_letters(dead_letters, Selection(frozenset({message.message_id}))) == 0
    # Then its work queue has it, exactly as signed, and the dead-letter queue is empty
    replayed = admin.get(topology.work_queue("card"))
    assert replayed is not None
    assert replayed.message_id == message.message_id
    assert replayed.body == message.body
    assert replayed.routing_key == "card"
    assert not any(name.startswith("paymq-dead-letter") for name in replayed.headers)
    assert "paymq-original-routing-key" not in replayed.headers
    assert admin.stats(topology.dead_letter_queue).messages == 0


def test_a_look_that_requeued_would_lose_a_dead_letter_to_a_delivery_limit_of_20(
    settings: Settings, admin: BrokerAdmin
) -> None:
    """The control: RabbitMQ 4.x's default, declared on 3.10, drops a message requeued past
    20 deliveries; paymq's browser used to requeue, and the tests above would fail so."""
    topology = settings.broker.topology()
    admin.declare(topology)
    try:
        queue = f"{topology.prefix}.limit-20"
        admin.declare_queue(
            QueueSpec(queue, {"x-queue-type": "quorum", "x-delivery-limit": 20}),
            BindingSpec(queue, topology.dead_letter_exchange, ""),
        )
        publish_dead_letter(settings, admin)
        looks = 0
        while admin.get(queue, ack=False) is not None:  # taken, then requeued
            looks += 1
            assert looks <= LOOKS, "the queue never dropped the message"
        assert looks == 21
    finally:
        admin.delete_queue(f"{topology.prefix}.limit-20")
        admin.delete(topology)

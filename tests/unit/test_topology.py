"""Names and arguments of every exchange, queue and binding, declared from one place."""

from __future__ import annotations

import pytest

from common.topology import BindingSpec, ExchangeSpec, QueueSpec, Topology


@pytest.fixture
def topology() -> Topology:
    return Topology(prefix="p", retry_delays_ms=(1_000, 5_000), delivery_limit=7)


def queues(topology: Topology) -> dict[str, QueueSpec]:
    return {queue.name: queue for queue in topology.queues()}


def test_names_are_derived_from_the_prefix(topology: Topology):
    assert topology.requests_exchange == "p.requests"
    assert topology.results_exchange == "p.results"
    assert topology.dead_letter_exchange == topology.dead_letter_queue == "p.dead-letter"
    assert topology.notifications_queue == "p.notifications"
    assert topology.work_queue("card") == "p.work.card"
    assert topology.retry_exchange(5_000) == "p.retry.5000ms"
    assert Topology.result_routing_key("card", "succeeded") == "card.succeeded"


def test_the_default_prefix_is_paymq():
    assert Topology().work_queue("digital_currency") == "paymq.work.digital_currency"


def test_exchanges_have_the_documented_types(topology: Topology):
    assert topology.exchanges() == [
        ExchangeSpec("p.requests", "direct"),
        ExchangeSpec("p.results", "topic"),
        ExchangeSpec("p.dead-letter", "fanout"),
        ExchangeSpec("p.retry.1000ms", "fanout"),
        ExchangeSpec("p.retry.5000ms", "fanout"),
    ]


def test_every_queue_is_a_quorum_queue(topology: Topology):
    assert len(topology.queues()) == 2 + 2 + 2
    for queue in topology.queues():
        assert queue.arguments["x-queue-type"] == "quorum", queue.name


@pytest.mark.parametrize("channel", ["card", "digital_currency"])
def test_work_queues_dead_letter_at_least_once_after_the_delivery_limit(
    topology: Topology, channel: str
):
    assert queues(topology)[f"p.work.{channel}"].arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "p.dead-letter",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@pytest.mark.parametrize("delay_ms", [1_000, 5_000])
def test_retry_queues_hold_messages_for_their_delay_then_return_them_to_requests(
    topology: Topology, delay_ms: int
):
    assert queues(topology)[f"p.retry.{delay_ms}ms"].arguments == {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "p.requests",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def test_the_dead_letter_queue_is_a_plain_quorum_queue(topology: Topology):
    assert queues(topology)["p.dead-letter"].arguments == {"x-queue-type": "quorum"}


def test_the_notifications_queue_drops_its_oldest_event_when_full_and_never_refuses_one():
    # reject-publish would nack the workers' result publishes and hold back every payment
    spec = queues(Topology(prefix="p", notifications_max_length=250))["p.notifications"]
    assert spec.arguments == {
        "x-queue-type": "quorum",
        "x-max-length": 250,
        "x-overflow": "drop-head",
    }


def test_only_the_notifications_queue_is_kept_when_it_exists_with_other_arguments(
    topology: Topology,
):
    # its arguments decide nothing about a payment; every other queue's do
    kept = [q.name for q in topology.queues() if q.existing_arguments_kept]
    assert kept == ["p.notifications"]
    assert not topology.webhooks_queue_spec().existing_arguments_kept


def test_the_notifications_queue_holds_100_000_events_by_default():
    assert Topology().notifications_queue_spec().arguments["x-max-length"] == 100_000


def test_a_notifications_queue_without_room_is_refused():
    with pytest.raises(ValueError, match="notifications_max_length"):
        Topology(notifications_max_length=0)


def test_queue_arguments_are_independent_copies(topology: Topology):
    first = queues(topology)["p.dead-letter"]
    first.arguments["x-max-length"] = 1
    assert "x-max-length" not in queues(topology)["p.dead-letter"].arguments


def test_bindings_route_channels_retries_dead_letters_and_all_results(topology: Topology):
    assert topology.bindings() == [
        BindingSpec("p.work.card", "p.requests", "card"),
        BindingSpec("p.work.digital_currency", "p.requests", "digital_currency"),
        BindingSpec("p.retry.1000ms", "p.retry.1000ms", ""),
        BindingSpec("p.retry.5000ms", "p.retry.5000ms", ""),
        BindingSpec("p.dead-letter", "p.dead-letter", ""),
        BindingSpec("p.notifications", "p.results", "#"),
    ]


@pytest.mark.parametrize(
    "delays",
    [(), (0,), (-1_000, 1_000), (5_000, 1_000), (1_000, 1_000)],
    ids=["empty", "zero", "negative", "decreasing", "duplicate"],
)
def test_retry_delays_must_be_positive_non_empty_and_strictly_increasing(
    delays: tuple[int, ...],
):
    with pytest.raises(ValueError, match="retry_delays_ms"):
        Topology(retry_delays_ms=delays)


def test_an_unknown_channel_has_no_work_queue(topology: Topology):
    with pytest.raises(ValueError, match="unknown channel 'wire'"):
        topology.work_queue("wire")


def test_a_delay_without_a_tier_has_no_retry_exchange(topology: Topology):
    with pytest.raises(ValueError, match="no retry tier of 2000 ms"):
        topology.retry_exchange(2_000)


def test_the_webhooks_queue_takes_every_result_and_dead_letters_poison(topology: Topology):
    spec = topology.webhooks_queue_spec()
    assert spec.name == topology.webhooks_queue == "p.webhooks"
    assert spec.arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "p.dead-letter",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert topology.webhooks_binding() == BindingSpec("p.webhooks", "p.results", "#")


def test_only_the_webhooks_process_declares_the_webhooks_queue(topology: Topology):
    # A queue nobody consumes would grow forever where webhooks are not used.
    assert topology.webhooks_queue not in queues(topology)


def test_a_replication_factor_is_given_to_every_quorum_queue_when_set_and_left_to_rabbitmq_else():
    replicated = Topology(prefix="p", quorum_replicas=5)
    queues = [*replicated.queues(), replicated.webhooks_queue_spec()]
    assert {q.arguments["x-quorum-initial-group-size"] for q in queues} == {5}
    default = Topology(prefix="p")
    for spec in [*default.queues(), default.webhooks_queue_spec()]:
        assert "x-quorum-initial-group-size" not in spec.arguments

"""The consumer's ack rules, on a stub session (tests/stubs/session.py) instead of a broker: a
delivery is acked only once everything its disposition publishes is confirmed, on the channel it
came from; otherwise it goes back to its queue, or is left for the broker to redeliver. The
integration tests (tests/integration/test_worker_lifecycle.py) run the same consumer on RabbitMQ.

The handler is a stand-in: each payment's disposition is chosen by the test, and a payment can be
held in its handler until the test lets it go.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.envelope import InboundMessage, OutboundMessage
from common.metrics import Metrics
from common.models import PaymentStatus
from common.signing import REQUEST_TYPE, RESULT_TYPE
from tests.stubs.loop import WAIT_S
from tests.stubs.publishes import Answer, StubProtocolError
from tests.stubs.session import StubSession
from workers.consumer import SETTLE_BATCH_S, Consumer, ConsumerOptions
from workers.handler import Disposition

QUEUE = "t.work.card"
PREFETCH = 16
#: Up to a quarter of this in flight, a finished payment is settled at once (no batch delay).
CONCURRENCY = 16
GRACE_S = 30.0


def request(payment: str) -> InboundMessage:
    return InboundMessage(
        body=b"{}",
        exchange="t.requests",
        routing_key="card",
        content_type="application/json",
        message_id=payment,
        message_type=REQUEST_TYPE,
        headers={},
    )


def result(payment: str, index: int = 0) -> OutboundMessage:
    return OutboundMessage(
        exchange="t.results",
        routing_key="card.succeeded",
        body=b"{}",
        message_id=f"result-{payment}-{index}",
        message_type=RESULT_TYPE,
    )


def settled(payment: str, *, messages: int = 1) -> Disposition:
    """A payment that succeeded: its stored result (and `messages - 1` more) to publish."""
    return Disposition(
        publish=tuple(result(payment, i) for i in range(messages)),
        status=PaymentStatus.SUCCEEDED,
        summary=f"{payment}: succeeded",
        payment_id=payment,
        stored_result=(payment, f"result-{payment}-0"),
    )


@dataclass
class Handling:
    """The consumer's handler: `settled(payment)` unless the test chose another disposition or
    an exception; a held payment waits in its pool thread until the test releases it."""

    answers: dict[str, Disposition | Exception] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)

    def hold(self, payment: str) -> threading.Event:
        return self.gates.setdefault(payment, threading.Event())

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.set()

    def __call__(self, message: InboundMessage) -> Disposition:
        payment = message.message_id or ""
        gate = self.gates.get(payment)
        if gate is not None and not gate.wait(WAIT_S):
            raise TimeoutError(f"{payment} was never released")
        answer = self.answers.get(payment) or settled(payment)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Rig:
    stub: StubSession
    consumer: Consumer
    handling: Handling
    metrics: Metrics
    #: What the consumer reported to `published` (stored results the broker confirmed).
    published: list[tuple[str, str]]
    #: One entry per call of the consumer's `on_stopped`.
    stops: list[str]
    ran: bool = False

    @property
    def in_flight(self) -> float | None:
        return self.metrics.registry.get_sample_value("paymq_in_flight", {"channel": "card"})

    def run(self) -> None:
        self.ran = True
        self.consumer.run()

    def finish(self) -> None:
        """Let every held payment go and stop: the pool's threads end, on_stopped runs."""
        self.handling.release_all()
        if not self.ran:
            self.stub.stop()
            self.run()


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(
        *, concurrency: int = CONCURRENCY, health_file: Path | None = None, connect: bool = True
    ) -> Rig:
        stub, handling, metrics = StubSession(), Handling(), Metrics()
        options = ConsumerOptions(
            queue=QUEUE,
            channel="card",
            concurrency=concurrency,
            prefetch=PREFETCH,
            shutdown_grace_s=GRACE_S,
            health_file=health_file,
        )
        published: list[tuple[str, str]] = []
        stops: list[str] = []
        consumer = Consumer(
            stub.attach,
            options,
            handling,
            on_stopped=lambda: stops.append("stopped"),
            metrics=metrics,
            published=published.append,
        )
        rig = Rig(stub, consumer, handling, metrics, published, stops)
        rigs.append(rig)
        if connect:
            stub.connect()
        return rig

    yield make
    for rig in rigs:
        rig.finish()


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    """A connected, consuming worker, quiet enough to settle each payment at once."""
    return make_rig()


# --- ack only after the result is confirmed ------------------------------------------------------


def test_a_delivery_is_not_acked_before_its_result_is_confirmed(rig: Rig) -> None:
    token = rig.stub.deliver(request("p1"))
    [publish] = rig.stub.wait_for_publishes(1)
    rig.stub.turn()
    assert rig.stub.acks == []
    publish.confirm()
    assert rig.stub.acks == [token]
    assert rig.consumer.processed == 1


def test_a_delivery_is_acked_only_once_every_message_it_publishes_is_confirmed(rig: Rig) -> None:
    rig.handling.answers["p1"] = settled("p1", messages=2)
    token = rig.stub.deliver(request("p1"))
    first, second = rig.stub.wait_for_publishes(2)
    first.confirm()
    assert rig.stub.acks == []
    second.confirm()
    assert rig.stub.acks == [token]


def test_a_delivery_with_nothing_to_publish_is_acked_at_once(rig: Rig) -> None:
    # Another worker owns the payment: nothing to publish, nothing to wait for.
    rig.handling.answers["p1"] = Disposition(
        publish=(), status=None, summary="p1: in another worker's hands", payment_id="p1"
    )
    token = rig.stub.deliver(request("p1"))
    rig.stub.run_until(lambda: bool(rig.stub.acks))
    assert rig.stub.acks == [token]
    assert rig.stub.publishes == []


def test_a_settled_delivery_is_logged_at_its_disposition_s_level(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Given one payment refused (a warning for an operator) and one that succeeded
    rig.handling.answers["p1"] = dataclasses.replace(
        settled("p1"), status=PaymentStatus.REJECTED, summary="p1: rejected", level=logging.WARNING
    )
    with caplog.at_level(logging.INFO, logger="paymq.worker"):
        # When both are handled and their results confirmed
        for payment in ("p1", "p2"):
            rig.stub.deliver(request(payment))
            [publish] = rig.stub.wait_for_publishes(1)
            publish.confirm()
    # Then each acked delivery's line has its own level
    lines = {r.getMessage(): r.levelno for r in caplog.records if r.name == "paymq.worker"}
    assert lines["p1: rejected"] == logging.WARNING
    assert lines["p2: succeeded"] == logging.INFO


# --- a publish that fails: back to the queue, never acked ----------------------------------------


def test_the_time_from_handled_to_confirmed_is_counted_for_confirmed_results_only(
    rig: Rig,
) -> None:
    def timed() -> float:
        name = "paymq_result_publish_seconds_count"
        return rig.metrics.registry.get_sample_value(name, {"channel": "card"}) or 0.0

    rig.stub.deliver(request("p1"))
    [publish] = rig.stub.wait_for_publishes(1)
    assert timed() == 0  # published, not yet confirmed
    publish.confirm()
    assert timed() == 1
    rig.stub.deliver(request("p2"))
    [refused] = rig.stub.wait_for_publishes(1)
    refused.nack()
    assert timed() == 1  # a refused publish is no result delivered


def test_a_nacked_result_sends_the_delivery_back_to_its_queue_unacked(rig: Rig) -> None:
    message = request("p1")
    token = rig.stub.deliver(message)
    [publish] = rig.stub.wait_for_publishes(1)
    publish.nack()
    assert rig.stub.acks == []
    assert rig.stub.rejects == [token]
    assert rig.stub.requeued == [message]
    # The stored result was never confirmed: the store's sweeper must still see it unpublished.
    assert rig.published == []


def test_one_nacked_message_sends_the_delivery_back_even_when_the_others_are_confirmed(
    rig: Rig,
) -> None:
    rig.handling.answers["p1"] = settled("p1", messages=2)
    token = rig.stub.deliver(request("p1"))
    first, second = rig.stub.wait_for_publishes(2)
    first.confirm()
    second.nack()
    assert rig.stub.acks == []
    assert rig.stub.rejects == [token]


def test_an_unroutable_result_sends_the_delivery_back_to_its_queue_unacked(rig: Rig) -> None:
    token = rig.stub.deliver(request("p1"))
    [publish] = rig.stub.wait_for_publishes(1)
    publish.return_unroutable()
    assert rig.stub.acks == []
    assert rig.stub.rejects == [token]
    assert rig.published == []


def test_a_handler_that_fails_sends_the_delivery_back_and_publishes_nothing(rig: Rig) -> None:
    rig.handling.answers["p1"] = RuntimeError("a bug after the provider call")
    token = rig.stub.deliver(request("p1"))
    rig.stub.run_until(lambda: bool(rig.stub.rejects))
    assert rig.stub.rejects == [token]
    assert rig.stub.acks == []
    assert rig.stub.publishes == []


# --- a lost connection: nothing acked, the broker redelivers -------------------------------------


def test_a_connection_lost_between_publish_and_confirm_acks_and_rejects_nothing(
    rig: Rig,
) -> None:
    # Given a result published and not yet confirmed
    message = request("p1")
    rig.stub.deliver(message)
    [publish] = rig.stub.wait_for_publishes(1)
    # When the connection goes
    rig.stub.lose_connection()
    # Then the publish failed, and its delivery is neither acked nor rejected: its channel is
    # gone, and the broker has put it back in the queue by itself
    assert publish.answer is Answer.FAILED
    assert rig.stub.acks == []
    assert rig.stub.rejects == []
    assert rig.stub.requeued == [message]
    assert rig.published == []
    assert rig.in_flight == 0


def test_a_payment_handled_while_its_connection_was_lost_publishes_and_acks_nothing(
    rig: Rig,
) -> None:
    # Given a payment in its handler
    gate = rig.handling.hold("p1")
    rig.stub.deliver(request("p1"))
    # When the connection goes and comes back before the handler is done
    rig.stub.lose_connection()
    rig.stub.connect()
    gate.set()
    rig.stub.run_until(lambda: rig.in_flight == 0)
    # Then its outcome is dropped: the redelivery will publish it (the store repeats it)
    assert rig.stub.publishes == []
    assert rig.stub.acks == []
    assert rig.stub.rejects == []


def test_a_confirmed_stored_result_is_reported_even_when_the_ack_can_no_longer_go_out(
    rig: Rig,
) -> None:
    # Given a result published, and the consuming connection lost before its confirm came
    message = request("p1")
    rig.stub.deliver(message)
    [publish] = rig.stub.wait_for_publishes(1)
    rig.stub.lose_consumer_connection()
    # When the broker confirms the result
    publish.confirm()
    # Then the store hears it is published, whatever becomes of the ack: none went out
    assert rig.published == [("p1", "result-p1-0")]
    assert rig.stub.acks == []
    assert rig.consumer.processed == 0
    assert rig.stub.requeued == [message]


def test_a_stored_result_is_reported_published_only_once_the_broker_confirms_it(
    rig: Rig,
) -> None:
    rig.stub.deliver(request("p1"))
    [publish] = rig.stub.wait_for_publishes(1)
    assert rig.published == []
    publish.confirm()
    assert rig.published == [("p1", "result-p1-0")]


# --- the right tags ------------------------------------------------------------------------------


def test_each_delivery_is_acked_with_its_own_tag_in_the_order_its_results_are_confirmed(
    rig: Rig,
) -> None:
    tokens = {payment: rig.stub.deliver(request(payment)) for payment in ("p1", "p2", "p3")}
    publishes = {p.message.message_id: p for p in rig.stub.wait_for_publishes(3)}
    for payment in ("p2", "p3", "p1"):
        publishes[f"result-{payment}-0"].confirm()
    assert rig.stub.acks == [tokens["p2"], tokens["p3"], tokens["p1"]]
    assert [token.delivery_tag for token in rig.stub.acks] == [2, 3, 1]


def test_after_a_reconnect_the_redelivery_is_acked_with_its_new_tag_never_the_old_one(
    rig: Rig,
) -> None:
    # Given a delivery whose connection was lost before its result was confirmed
    message = request("p1")
    old = rig.stub.deliver(message)
    rig.stub.wait_for_publishes(1)
    rig.stub.lose_connection()
    # When the session reconnects, the worker consumes again and gets the message back
    rig.stub.connect()
    assert rig.stub.consumes == [(QUEUE, PREFETCH), (QUEUE, PREFETCH)]
    new = rig.stub.deliver(message)
    [publish] = rig.stub.wait_for_publishes(1)
    publish.confirm()
    # Then only the new delivery is acked, with the new connection's tag
    assert rig.stub.acks == [new]
    assert (old.generation, old.delivery_tag) == (0, 1)
    assert (new.generation, new.delivery_tag) == (1, 1)


# --- batched settling ----------------------------------------------------------------------------


def test_a_busy_worker_settles_a_finished_payment_after_the_batch_delay(
    make_rig: Callable[..., Rig],
) -> None:
    # Given a worker of 4 threads with 2 payments in flight (busy: more than a quarter)
    rig = make_rig(concurrency=4)
    rig.handling.hold("slow")
    rig.stub.deliver(request("slow"))
    token = rig.stub.deliver(request("p1"))
    # When p1 finishes, its settling waits for the batch delay
    rig.stub.run_until(lambda: bool(rig.stub.timers))
    assert rig.stub.timers == [SETTLE_BATCH_S]
    assert rig.stub.publishes == []
    # Then it is published once the delay has passed, and acked once confirmed
    rig.stub.advance(SETTLE_BATCH_S)
    [publish] = rig.stub.pending
    publish.confirm()
    assert rig.stub.acks == [token]


def test_a_quiet_worker_settles_a_finished_payment_at_once(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(concurrency=4)
    rig.stub.deliver(request("p1"))
    rig.stub.wait_for_publishes(1)
    assert rig.stub.now_s == 0.0


# --- shutdown ------------------------------------------------------------------------------------


def test_shutdown_stops_deliveries_and_acks_what_is_in_flight_before_closing(rig: Rig) -> None:
    # Given a payment in its handler
    gate = rig.handling.hold("p1")
    token = rig.stub.deliver(request("p1"))
    # When the worker is asked to shut down
    rig.consumer.shutdown()
    rig.stub.turn()
    # Then it takes no more deliveries, but keeps its session open for the payment in flight
    assert not rig.stub.consuming
    assert not rig.stub.stopped
    gate.set()
    [publish] = rig.stub.wait_for_publishes(1)
    assert not rig.stub.stopped
    # and closes once that payment's result is confirmed and its delivery acked
    publish.confirm()
    rig.stub.run_until(lambda: rig.stub.stopped)
    assert rig.stub.acks == [token]


def test_payments_still_in_flight_when_the_grace_period_ends_are_left_for_redelivery(
    rig: Rig,
) -> None:
    rig.handling.hold("p1")
    message = request("p1")
    rig.stub.deliver(message)
    rig.consumer.shutdown()
    rig.stub.turn()
    rig.stub.advance(GRACE_S / 2)
    assert not rig.stub.stopped
    rig.stub.advance(GRACE_S / 2)
    assert rig.stub.stopped
    assert rig.stub.acks == []
    assert rig.stub.requeued == [message]


def test_a_draining_worker_whose_connection_is_lost_stops_instead_of_reconnecting(
    rig: Rig,
) -> None:
    rig.handling.hold("p1")
    rig.stub.deliver(request("p1"))
    rig.consumer.shutdown()
    rig.stub.turn()
    rig.stub.lose_connection()
    rig.stub.turn()
    assert rig.stub.stopped


def test_run_keeps_the_health_file_fresh_while_connected_and_returns_once_shut_down(
    make_rig: Callable[..., Rig], tmp_path: Path
) -> None:
    # Given a worker running on a thread of its own (its I/O thread)
    health = tmp_path / "alive"
    rig = make_rig(health_file=health, connect=False)
    worker = threading.Thread(target=rig.run)
    worker.start()
    # Then, once connected, it touches its health file
    deadline = time.monotonic() + WAIT_S
    while not health.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert health.exists()
    # and a shutdown from another thread (a signal handler) ends run(), calling on_stopped
    rig.consumer.shutdown()
    worker.join(WAIT_S)
    assert not worker.is_alive()
    assert rig.stub.stopped
    assert rig.stops == ["stopped"]


# --- the payment store ---------------------------------------------------------------------------


def test_a_worker_takes_no_deliveries_while_its_store_is_down(rig: Rig) -> None:
    rig.consumer.store_changed(False)
    rig.stub.turn()
    assert not rig.consumer.consuming
    with pytest.raises(StubProtocolError, match="no consumer"):
        rig.stub.deliver(request("p1"))
    rig.consumer.store_changed(True)
    rig.stub.turn()
    assert rig.consumer.consuming


def test_a_draining_worker_does_not_consume_again_when_its_store_comes_back(rig: Rig) -> None:
    rig.handling.hold("p1")
    rig.stub.deliver(request("p1"))
    rig.consumer.store_changed(False)
    rig.consumer.shutdown()
    rig.consumer.store_changed(True)
    rig.stub.turn()
    assert not rig.consumer.consuming

"""A claim is a fencing token: only the delivery that holds the payment's current claim moves
it on, and a delivery whose claim was taken over is not dropped on trust (I6)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from common.clock import FixedClock
from common.envelope import InboundMessage
from common.models import PaymentRequest, PaymentStatus
from tests.unit.conftest import FakeChannel, Handled, Worker
from workers.channels.base import ExecutionContext
from workers.providers.base import ProviderReceipt

LEASE_MS = 60_000  # the unit store's lease (conftest)
WAIT_S = 10.0  # a deadline for the other thread, never a measure of speed


class Interleaved:
    """Two deliveries of one payment in one process: the first (a stale thread) stalls in its
    provider call past its lease; the second (the redelivery) takes the claim over and is
    still in its own call when the stale thread goes on to record what it got."""

    name = "card"
    primary_provider = "fake"

    def __init__(self) -> None:
        self.calls: list[ExecutionContext] = []
        self.stale_in_call = threading.Event()
        self.redelivery_in_call = threading.Event()
        self.stale_done = threading.Event()

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.calls.append(context)
        if len(self.calls) == 1:
            self.stale_in_call.set()
            assert self.redelivery_in_call.wait(WAIT_S)
        else:
            self.redelivery_in_call.set()
            assert self.stale_done.wait(WAIT_S)
        # Like a real provider: one idempotency key, one charge, one reference.
        return ProviderReceipt(provider="fake", reference=f"ref-{context.idempotency_key}")


def in_thread(handle: Callable[[], Handled]) -> tuple[threading.Thread, list[Handled]]:
    out: list[Handled] = []
    thread = threading.Thread(target=lambda: out.append(handle()), daemon=True)
    thread.start()
    return thread, out


def test_a_stale_thread_cannot_record_over_the_redelivery_that_took_its_claim_over(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any], clock: FixedClock
):
    # Given a thread that claimed a payment and stalled in its provider call past the lease
    channel = Interleaved()
    worker = make_worker(channel)
    _, message = make_request()
    stale_thread, stale = in_thread(lambda: worker.handle(message))
    assert channel.stale_in_call.wait(WAIT_S)
    clock.advance(LEASE_MS + 1)
    # When the message is redelivered to the same process, which takes the claim over, and
    # the stale thread records its outcome while the redelivery is still in its call
    redelivery_thread, redelivered = in_thread(lambda: worker.handle(message))
    stale_thread.join(WAIT_S)
    channel.stale_done.set()
    redelivery_thread.join(WAIT_S)

    # Then the stale thread wrote nothing: its delivery looks again later instead of acking
    [stale_handled], [current] = stale, redelivered
    assert stale_handled.status is None
    assert stale_handled.events == []
    assert len(stale_handled.retries) == 1
    # And the delivery that holds the claim records and publishes the payment's one result
    assert current.status is PaymentStatus.SUCCEEDED
    [event] = current.events
    assert current.disposition.stored_result == (str(current.result.payment_id), event.message_id)
    row = worker.views.get(str(current.result.payment_id))
    assert row is not None
    assert (row["state"], bytes(row["result_body"])) == ("succeeded", event.body)
    # And both calls carried the payment's one idempotency key
    assert len({c.idempotency_key for c in channel.calls}) == 1


class FinishedMeanwhile:
    """The provider call outlives the claim's lease, and another delivery of the payment
    took it over and finished it meanwhile."""

    name = "card"
    primary_provider = "fake"

    def __init__(self, worker: Callable[[], Worker], clock: FixedClock) -> None:
        self._worker = worker
        self._clock = clock
        self.other: Handled | None = None
        self.calls = 0

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.calls += 1
        if self.calls == 1:
            self._clock.advance(LEASE_MS + 1)
            self.other = self._worker().handle(self.message)
        return ProviderReceipt(provider="fake", reference=f"ref-{context.idempotency_key}")

    message: InboundMessage


def test_a_delivery_whose_claim_was_lost_publishes_the_stored_result_before_it_is_acked(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any], clock: FixedClock
):
    # Given a delivery whose claim ran out during its provider call, while another delivery
    # of the payment took it over and stored its result
    workers: list[Worker] = []
    channel = FinishedMeanwhile(lambda: workers[0], clock)
    workers.append(make_worker(channel))
    _, channel.message = make_request()
    # When the first delivery comes back from its call
    late = workers[0].handle(channel.message)

    # Then it does not ack on the other's word: it publishes the stored result, byte for byte
    assert channel.other is not None
    [stored] = channel.other.events
    assert [e.body for e in late.events] == [stored.body]
    assert late.status is PaymentStatus.SUCCEEDED
    assert late.disposition.stored_result == channel.other.disposition.stored_result


class DuplicateMeanwhile:
    """While the provider call of the first delivery runs, a duplicate of the request
    arrives (published twice): it finds the claim held."""

    name = "card"
    primary_provider = "fake"

    def __init__(
        self, worker: Callable[[], Worker], clock: FixedClock | None = None, held_ms: int = 0
    ) -> None:
        self._worker = worker
        self._clock = clock
        self._held_ms = held_ms
        self.duplicate: Handled | None = None
        self.calls = 0
        self.message: InboundMessage | None = None

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.calls += 1
        if self._clock is not None:
            self._clock.advance(self._held_ms)  # the call has been going on this long
        if self.message is not None and self.duplicate is None:
            self.duplicate = self._worker().handle(self.message)
        return ProviderReceipt(provider="fake", reference=f"ref-{context.idempotency_key}")


def test_a_duplicate_finding_the_claim_held_looks_again_after_the_first_tier(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any]
):
    # Given a payment whose first delivery holds its claim (for a 60 s lease)
    workers: list[Worker] = []
    channel = DuplicateMeanwhile(lambda: workers[0])
    workers.append(make_worker(channel))
    _, channel.message = make_request()
    # When a duplicate of it arrives during the provider call
    workers[0].handle(channel.message)
    # Then the duplicate waits in the first retry tier, not until the lease runs out, and
    # never reaches the provider
    assert channel.duplicate is not None
    [retry] = channel.duplicate.retries
    topology = workers[0].topology
    assert retry.exchange == topology.retry_exchange(topology.retry_delays_ms[0])
    assert channel.calls == 1


def test_the_longer_a_claim_has_been_held_the_longer_a_duplicate_waits_to_look_again(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any], clock: FixedClock
):
    # Given a payment whose claim has been held for 20 s (its holder may have died)
    workers: list[Worker] = []
    channel = DuplicateMeanwhile(lambda: workers[0], clock, held_ms=20_000)
    workers.append(make_worker(channel))
    _, channel.message = make_request()
    # When a duplicate of it arrives
    workers[0].handle(channel.message)
    # Then it waits about as long again (the tier of at least 20 s), not the first tier, and
    # a dead holder's 60 s lease costs a few looks instead of one a second
    assert channel.duplicate is not None
    [retry] = channel.duplicate.retries
    topology = workers[0].topology
    assert retry.exchange == topology.retry_exchange(30_000)


def test_a_request_redelivered_often_goes_back_as_a_fresh_copy_without_a_claim(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any]
):
    # Given a worker that refreshes requests delivered 5 times (lost connections count)
    worker = make_worker(FakeChannel("card"), refresh_after_deliveries=5)
    request, message = make_request()
    redelivered = to_inbound_with_count(message, 5)
    # When such a request arrives
    handled = worker.handle(redelivered)
    # Then the same signed bytes go back to its work queue as a new message, untouched
    [copy] = handled.refreshed
    assert (copy.routing_key, copy.body, copy.message_id) == (
        "card",
        message.body,
        message.message_id,
    )
    assert "x-delivery-count" not in copy.headers
    assert {k: v for k, v in copy.headers.items()} == {
        k: v for k, v in message.headers.items() if not k.startswith("x-")
    }
    # and nothing was claimed, executed or published besides
    assert (handled.events, handled.retries, worker.channel.calls) == ([], [], [])
    assert worker.views.get(str(request.payment_id)) is None
    assert worker.metrics.requests_refreshed.labels("card")._value.get() == 1


def test_a_request_redelivered_less_often_is_executed(
    make_worker: Callable[..., Worker], make_request: Callable[..., Any]
):
    worker = make_worker(FakeChannel("card"), refresh_after_deliveries=5)
    _, message = make_request()
    handled = worker.handle(to_inbound_with_count(message, 4))
    assert handled.status is PaymentStatus.SUCCEEDED
    assert handled.refreshed == []


def to_inbound_with_count(message: InboundMessage, count: int) -> InboundMessage:
    """As RabbitMQ delivers a quorum queue's message for the (count + 1)-th time."""
    return dataclasses.replace(message, headers={**message.headers, "x-delivery-count": count})

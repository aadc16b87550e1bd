"""Workers that die holding a payment: the next one must assume the provider may have acted,
and a payment that kills every worker that takes it stops being executed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.clock import FixedClock
from common.envelope import HEADER_DEAD_LETTER_CODE
from common.errors import ProviderUnavailable
from common.models import PaymentRequest, PaymentStatus
from store.states import State
from tests.unit.conftest import FakeChannel, Worker, to_inbound
from workers.channels.base import ExecutionContext
from workers.providers.base import ProviderReceipt

LEASE_MS = 60_000  # the unit store's lease (conftest)


class WorkerDied(BaseException):
    """Stands for the process dying mid provider call: nothing after it runs."""


class DeadlyChannel:
    """Moves the money, then the worker dies: every time."""

    name = "card"
    primary_provider = "fake"

    def __init__(self) -> None:
        self.keys: list[str] = []

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.keys.append(context.idempotency_key)
        raise WorkerDied


def test_a_payment_that_kills_every_worker_goes_in_doubt_and_to_the_dead_letter_queue(
    make_worker: Callable[[Any], Worker], make_request: Callable[..., Any], clock: FixedClock
):
    # Given a payment whose provider call kills the worker every time
    channel = DeadlyChannel()
    worker = make_worker(channel)
    request, message = make_request()
    # When it is delivered again each time the dead worker's claim runs out
    for _ in range(5):
        with pytest.raises(WorkerDied):
            worker.handle(message)
        clock.advance(LEASE_MS + 1)
    handled = worker.handle(message)

    # Then the fifth takeover does not call the provider again: first holder + 4 takeovers
    assert len(channel.keys) == 5
    assert len(set(channel.keys)) == 1, "every call carried the same idempotency key"
    # and the payment is in doubt, with a result event, for the reconciler to settle
    assert handled.status is PaymentStatus.IN_DOUBT
    assert handled.result.code == "poison_message"
    assert worker.views.get(str(request.payment_id))["state"] == State.IN_DOUBT.value  # type: ignore[index]
    # and an operator finds the request in the dead-letter queue with the reason
    [letter] = handled.dead_letters
    assert letter.headers[HEADER_DEAD_LETTER_CODE] == "poison_message"
    assert letter.body == message.body
    # and a redelivery only repeats the stored result
    again = worker.handle(message)
    assert again.events == handled.events
    assert len(channel.keys) == 5


def test_after_a_takeover_a_payment_that_runs_out_of_attempts_is_in_doubt_not_failed(
    make_worker: Callable[[Any], Worker], make_request: Callable[..., Any], clock: FixedClock
):
    # Given a worker that died in the middle of the provider call (the money may have moved)
    deadly = DeadlyChannel()
    _request, message = make_request()
    with pytest.raises(WorkerDied):
        make_worker(deadly).handle(message)
    clock.advance(LEASE_MS + 1)

    # When the next workers cannot even reach the provider until the attempts run out
    refusing = FakeChannel("card")
    refusing.script(*(ProviderUnavailable("connection refused") for _ in range(10)))
    worker = make_worker(refusing)
    handled = worker.handle(message)
    while handled.retries:
        handled = worker.handle(to_inbound(handled.retries[0]))

    # Then the payment is in doubt, never failed on a guess
    assert handled.status is PaymentStatus.IN_DOUBT

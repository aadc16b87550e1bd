"""Provider outcomes through the real retry tiers: declines are final, transient trouble is
retried with the same idempotency key (never a second effect, I2), and what cannot be known ends
in doubt. Every test ends with the retry queues empty (I4)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from common.amqp.admin import BrokerAdmin
from common.envelope import (
    HEADER_ATTEMPTS,
    HEADER_DEAD_LETTER_CODE,
    InboundMessage,
    OutboundMessage,
)
from common.models import PaymentRequest, PaymentResult
from common.settings import Settings
from common.subscriber import ResultStream
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import card_draft, collect_results, drain, wait_until

pytestmark = pytest.mark.integration


@dataclass
class Run:
    request: PaymentRequest
    message: OutboundMessage
    result: PaymentResult
    #: A copy of every message sent to a retry tier, by tier (delay in ms).
    retried: dict[int, list[InboundMessage]]
    elapsed_s: float

    @property
    def retries(self) -> dict[int, int]:
        return {delay: len(copies) for delay, copies in self.retried.items()}


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings, or with other retry tiers (indirect parametrization)."""
    tiers = getattr(request, "param", None)
    return settings if tiers is None else settings.replace(retry_delays_ms=tiers)


@pytest.fixture
def pay(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> Callable[..., Run]:
    """Publish one card payment (with sandbox faults aimed at it) to a card worker and wait
    for its final result, counting what went through each retry tier."""

    def run(card: str = "tok_visa", faults: tuple[dict[str, Any], ...] = ()) -> Run:
        taps = {
            delay: admin.private_queue(topology.broker.topology().retry_exchange(delay))
            for delay in topology.broker.retry_delays_ms
        }
        worker = start_worker("card")
        draft = card_draft(card)
        for fault in faults:  # before publishing: the first attempt must meet them
            control.add_fault(reference=str(draft.payment_id), **fault)
        request, message = producer.prepare(draft)
        started = time.monotonic()
        producer.publish(message)
        [result] = collect_results(results, 1, terminal_only=False, timeout_s=30)
        elapsed_s = time.monotonic() - started
        assert result.payment_id == request.payment_id
        # Every delivery (one per attempt) is acked once its messages are confirmed.
        wait_until(lambda: worker.consumer.processed == max(result.attempts, 1), what="acks")
        retried = {delay: drain(admin, queue) for delay, queue in taps.items()}
        return Run(request, message, result, retried, elapsed_s)

    return run


@pytest.fixture(autouse=True)
def _retry_queues_end_empty(topology: Settings, admin: BrokerAdmin) -> Iterator[None]:
    yield
    topo = topology.broker.topology()
    for delay in topo.retry_delays_ms:
        assert admin.stats(topo.retry_exchange(delay)).messages == 0, f"{delay} ms tier"
    assert admin.stats(topo.work_queue("card")).messages == 0


def _dead_letters(admin: BrokerAdmin, topology: Settings) -> list[str]:
    return [
        str(m.headers[HEADER_DEAD_LETTER_CODE])
        for m in drain(admin, topology.broker.topology().dead_letter_queue)
    ]


def test_declined_payment_is_final_without_retry_dead_letter_or_effect(
    pay: Callable[..., Run], topology: Settings, admin: BrokerAdmin, control: SandboxControl
) -> None:
    run = pay(card="tok_insufficient_funds")
    assert (run.result.status, run.result.code) == ("declined", "insufficient_funds")
    assert run.result.attempts == 1
    assert sum(run.retries.values()) == 0
    assert _dead_letters(admin, topology) == []
    assert control.effects(str(run.request.payment_id)) == []


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [
        pytest.param({"action": "error_before_effect", "times": 2}, 3, id="500_twice_before"),
        pytest.param({"action": "error_after_effect"}, 2, id="500_after_the_charge"),
        pytest.param({"action": "reset_after_effect"}, 2, id="reset_after_the_charge"),
        # The sandbox answers after 2 s; the worker gives up reading after 1 s.
        pytest.param(
            {"action": "timeout_after_effect", "delay_s": 2}, None, id="timeout_after_the_charge"
        ),
    ],
)
def test_transient_trouble_ends_in_one_success_with_exactly_one_effect(
    fault: dict[str, Any],
    attempts: int | None,
    pay: Callable[..., Run],
    topology: Settings,
    admin: BrokerAdmin,
    control: SandboxControl,
) -> None:
    # Given the provider misbehaves on the first attempt(s) of a payment
    # When it is paid through a worker
    run = pay(faults=(fault,))
    # Then it succeeds, the retries reused the idempotency key: the provider moved money once
    assert run.result.status == "succeeded", run.result.reason
    if attempts is None:  # a 409 while the first call still sleeps costs one more retry
        assert 2 <= run.result.attempts <= topology.worker.max_attempts
    else:
        assert run.result.attempts == attempts
    # and every retry was the same signed bytes, counting the attempts made so far
    copies = [copy for tier in run.retried.values() for copy in tier]
    assert sorted(c.headers[HEADER_ATTEMPTS] for c in copies) == list(range(1, run.result.attempts))
    assert all(c.body == run.message.body for c in copies)
    [effect] = control.effects(str(run.request.payment_id))
    assert effect["id"] == run.result.provider_reference
    assert _dead_letters(admin, topology) == []


def test_processing_error_fails_after_max_attempts_without_effect(
    pay: Callable[..., Run], topology: Settings, admin: BrokerAdmin, control: SandboxControl
) -> None:
    run = pay(card="tok_processing_error")
    assert (run.result.status, run.result.code) == ("failed", "processing_error")
    assert run.result.attempts == topology.worker.max_attempts == 3
    assert run.retries == {100: 1, 200: 1, 400: 0}
    assert _dead_letters(admin, topology) == []
    assert control.effects(str(run.request.payment_id)) == []


def test_persistent_server_errors_leave_the_payment_in_doubt_for_the_reconciler(
    pay: Callable[..., Run], topology: Settings, admin: BrokerAdmin, control: SandboxControl
) -> None:
    # Given a provider answering 500 to every attempt: each may have moved money
    run = pay(faults=({"action": "error_before_effect", "times": 10},))
    # Then the worker never guesses "failed": the payment is in doubt, kept for a reconciler
    assert (run.result.status, run.result.code) == ("in_doubt", "provider_server_error")
    assert run.result.attempts == topology.worker.max_attempts
    assert _dead_letters(admin, topology) == []
    assert control.effects(str(run.request.payment_id)) == []


@pytest.mark.parametrize("settings", [(100, 1000)], indirect=True, ids=["tiers_100_1000ms"])
def test_rate_limited_payment_waits_in_the_tier_that_covers_retry_after(
    pay: Callable[..., Run], control: SandboxControl
) -> None:
    # Given tiers of 100 ms and 1 s, and a provider asking to come back after 1 s
    # When a payment meets the rate limit
    run = pay(faults=({"action": "rate_limit", "retry_after_s": 1},))
    # Then the retry skipped the 100 ms tier for the 1 s one, and the payment succeeded once
    assert run.result.status == "succeeded"
    assert run.result.attempts == 2
    assert run.retries == {100: 0, 1000: 1}
    # (the 1 s is the retry queue's TTL, enforced by the broker after our publish)
    assert run.elapsed_s >= 0.95
    assert len(control.effects(str(run.request.payment_id))) == 1

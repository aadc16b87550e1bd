"""Provider routing through the real pipeline, with the sandbox's fault injection and
localstripe: a payment fails over only when the provider surely did not act, an open circuit
sends new payments to the next provider, and a probe closes it again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from common.models import PaymentResult
from common.money import Money
from common.settings import Settings
from common.subscriber import ResultStream
from paymq_tools.processes import free_port
from producer.encode import Draft
from producer.producer import Producer
from sandbox.client import SandboxControl
from store.database import engine_for
from store.views import PaymentViews
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    card_draft,
    collect_results,
    sealed_card_draft,
    wait_until,
)
from tests.integration.localstripe import API_KEY, LocalStripe

pytestmark = pytest.mark.integration


@pytest.fixture
def faults(control: SandboxControl) -> Iterator[SandboxControl]:
    """The sandbox, with every fault rule this test adds removed afterwards."""
    yield control
    control.clear_faults()


def routed(
    settings: Settings, providers: tuple[str, ...], stripe_url: str, **more: object
) -> Settings:
    return settings.replace(
        **{
            "card_providers": providers,
            "stripe_api_base": stripe_url,
            "stripe_api_key": SecretStr(API_KEY),
            **more,
        }
    )


#: The sandbox answers this card 503 processing_error, documented as before any effect.
SANDBOX_PROCESSING_ERROR = "4000000000000119"


def card_payment(number: str = "4242424242424242") -> Draft:
    return sealed_card_draft(number, amount_minor=2500)


def pay(producer: Producer, results: ResultStream, draft: Draft | None = None) -> PaymentResult:
    _request, message = producer.prepare(draft or card_payment())
    producer.publish(message)
    [result] = collect_results(results, 1, timeout_s=20)
    return result


def test_a_provider_that_refuses_connections_fails_over_to_the_next(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given Stripe first, unreachable, and the sandbox second
    settings = routed(topology, ("stripe", "sandbox"), f"http://127.0.0.1:{free_port()}")
    start_worker("card", settings=settings)
    # When a card payment is made
    result = pay(producer, results)
    # Then the sandbox took it, and the store says why it went there
    assert (result.status, result.provider) == ("succeeded", "sandbox")
    assert result.payment_id is not None
    assert len(control.effects(str(result.payment_id))) == 1
    engine = engine_for(settings.store)
    try:
        moves, _attempts = PaymentViews(engine).history(str(result.payment_id))
    finally:
        engine.dispose()
    assert any(
        move["reason"] == "routed to sandbox after stripe: provider_unavailable" for move in moves
    )


def test_a_token_of_an_unreachable_provider_is_never_sent_to_another(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    settings = routed(topology, ("stripe", "sandbox"), f"http://127.0.0.1:{free_port()}")
    start_worker("card", settings=settings)
    reference = f"order-{uuid.uuid4().hex[:10]}"
    draft = Draft(
        amount=Money(amount_minor=100, currency="EUR"),
        merchant_reference=reference,
        idempotency_key=reference,
        card_token="pm_card_visa",
    )
    result = pay(producer, results, draft)
    assert (result.status, result.code) == ("failed", "provider_unavailable")
    assert control.effects(str(result.payment_id)) == []


def test_an_unknown_outcome_is_retried_at_the_same_provider_never_the_next(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    faults: SandboxControl,
    localstripe: LocalStripe,
) -> None:
    # Given the sandbox first, which charges and then lets the call time out
    start_worker("card", settings=routed(topology, ("sandbox", "stripe"), localstripe.url))
    request, message = producer.prepare(card_payment())
    payment_id = str(request.payment_id)
    faults.add_fault("timeout_after_effect", reference=payment_id, delay_s=5)
    # When the payment is made
    producer.publish(message)
    [result] = collect_results(results, 1, timeout_s=20)
    # Then it stayed with the sandbox, which was charged once, and Stripe never saw it
    assert (result.status, result.provider, result.attempts) == ("succeeded", "sandbox", 2)
    assert len(faults.effects(payment_id)) == 1
    assert localstripe.intents_for(payment_id) == []


def test_a_provider_that_answered_429_fails_over_at_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    faults: SandboxControl,
    localstripe: LocalStripe,
) -> None:
    start_worker("card", settings=routed(topology, ("sandbox", "stripe"), localstripe.url))
    request, message = producer.prepare(card_payment())
    payment_id = str(request.payment_id)
    faults.add_fault("rate_limit", reference=payment_id, retry_after_s=30)
    producer.publish(message)
    [result] = collect_results(results, 1, timeout_s=20)
    assert (result.status, result.provider, result.attempts) == ("succeeded", "stripe", 1)
    assert faults.effects(payment_id) == []
    [intent] = localstripe.intents_for(payment_id)
    assert intent["id"] == result.provider_reference


def test_an_open_circuit_skips_the_provider_until_a_probe_succeeds(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    localstripe: LocalStripe,
) -> None:
    # Given the sandbox first, and a circuit that opens after two failures for three seconds
    settings = routed(
        topology,
        ("sandbox", "stripe"),
        localstripe.url,
        breaker_failures=2,
        breaker_open_s=3.0,
    )
    start_worker("card", settings=settings)
    # When two payments meet a sandbox that fails before any effect, both fail over to Stripe
    failing = [pay(producer, results, card_payment(SANDBOX_PROCESSING_ERROR)) for _ in range(2)]
    assert [(r.status, r.provider) for r in failing] == [("succeeded", "stripe")] * 2
    # Then the circuit is open: the next payment goes to Stripe without asking the sandbox,
    # which would have taken it
    skipped = pay(producer, results)
    assert (skipped.status, skipped.provider) == ("succeeded", "stripe")
    assert control.effects(str(skipped.payment_id)) == []
    # And once the open time has passed, a payment probes the sandbox and closes the circuit
    wait_until(
        lambda: pay(producer, results).provider == "sandbox",
        timeout_s=30,
        what="a payment that probes the sandbox again",
    )
    assert pay(producer, results).provider == "sandbox"


def test_a_payment_that_meets_an_open_circuit_waits_for_it_without_spending_attempts(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given the sandbox alone, a circuit that opens after two failures for two seconds, and
    # retry tiers that run out long before that (100, 200, 400 ms; three attempts)
    settings = topology.replace(breaker_failures=2, breaker_open_s=2.0)
    start_worker("card", settings=settings)
    failing = pay(producer, results, card_payment(SANDBOX_PROCESSING_ERROR))
    assert (failing.status, failing.code) == ("failed", "processing_error")
    # When a payment arrives while the circuit is open
    waiting = pay(producer, results, card_draft("tok_visa"))
    # Then it waited for the circuit instead of failing, and was sent exactly once
    assert (waiting.status, waiting.provider, waiting.attempts) == ("succeeded", "sandbox", 1)
    assert len(control.effects(str(waiting.payment_id))) == 1

"""The card channel on Stripe's PaymentIntents API, against localstripe, through the real
broker, store and worker: success, declines, 3-D Secure, lookups, and one PaymentIntent per
payment although localstripe ignores idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from common.settings import Settings
from common.subscriber import ResultStream
from producer.encode import Draft
from producer.producer import Producer
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    card_draft,
    collect_events,
    collect_results,
    reconciling,
    sealed_card_draft,
)
from tests.integration.localstripe import API_KEY, LocalStripe
from tests.integration.proxy import AnswerLosingProxy
from workers.providers.stripe_card import StripeProvider
from workers.reconciler_thread import ReconcilerThread

pytestmark = pytest.mark.integration


def on_stripe(settings: Settings, api_base: str) -> Settings:
    return settings.replace(
        card_providers=("stripe",), stripe_api_base=api_base, stripe_api_key=SecretStr(API_KEY)
    )


@pytest.fixture
def stripe_settings(topology: Settings, localstripe: LocalStripe) -> Settings:
    return on_stripe(topology, localstripe.url)


@pytest.fixture
def reconciler(stripe_settings: Settings) -> Iterator[ReconcilerThread]:
    with reconciling(stripe_settings) as thread:
        yield thread


def card(number: str) -> Draft:
    return sealed_card_draft(number)


def token(value: str) -> Draft:
    return card_draft(value, amount="9.99")


def test_sealed_card_data_is_charged_with_one_confirmed_payment_intent(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(card("4242424242424242"))
    producer.publish(message)
    [result] = collect_results(results, 1)
    assert (result.status, result.provider, result.card_last4) == ("succeeded", "stripe", "4242")
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert result.provider_reference == intent["id"]
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 4200, "eur")


def test_a_stripe_payment_method_token_is_charged(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
) -> None:
    start_worker("card", settings=stripe_settings)
    producer.publish(producer.prepare(token("pm_card_visa"))[1])
    [result] = collect_results(results, 1)
    assert (result.status, result.provider) == ("succeeded", "stripe")
    assert result.provider_reference is not None
    assert result.provider_reference.startswith("pi_")


@pytest.mark.parametrize(
    "draft", [card("4000000000000341"), token("pm_card_chargeCustomerFail")], ids=["card", "token"]
)
def test_a_card_declined_on_charge_is_declined_with_stripes_code(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
    draft: Draft,
) -> None:
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(draft)
    producer.publish(message)
    [result] = collect_results(results, 1)
    assert (result.status, result.code) == ("declined", "card_declined")
    assert result.attempts == 1, "a decline is never retried"
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert intent["status"] == "requires_payment_method"


def test_a_3d_secure_card_is_pending_with_what_the_payer_must_do_then_succeeds(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
    reconciler: ReconcilerThread,
) -> None:
    # Given a card that needs 3-D Secure
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(card("4000002760003184"))
    producer.publish(message)
    # Then the payment is pending, saying what the payer must do
    [pending] = collect_results(results, 1, terminal_only=False)
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert (pending.status, pending.code) == ("pending", "requires_action")
    assert pending.action is not None
    assert (pending.action.type, pending.action.client_secret) == ("sdk", intent["client_secret"])
    assert pending.provider_reference == intent["id"]
    # When the payer authenticates in their browser
    assert localstripe.authenticate(intent["id"], intent["client_secret"], success=True) == 200
    # Then the reconciler finds the payment succeeded, and says so
    [settled] = collect_results(results, 1, timeout_s=30)
    assert (settled.status, settled.provider_reference) == ("succeeded", intent["id"])
    assert settled.action is None


def test_a_payer_who_fails_3d_secure_gets_a_declined_result(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
    reconciler: ReconcilerThread,
) -> None:
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(card("4000000000003220"))
    producer.publish(message)
    [pending] = collect_results(results, 1, terminal_only=False)
    assert pending.status == "pending"
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert localstripe.authenticate(intent["id"], intent["client_secret"], success=False) == 200
    [settled] = collect_results(results, 1, timeout_s=30)
    assert (settled.status, settled.code) == ("declined", "payment_intent_authentication_failure")


def test_a_payment_intent_is_found_by_our_reference_and_an_unknown_one_is_not(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(card("5555555555554444"))
    producer.publish(message)
    [result] = collect_results(results, 1)
    provider = StripeProvider(
        API_KEY, api_base=localstripe.url, connect_timeout_s=2, read_timeout_s=5
    )
    try:
        found = provider.lookup("card", str(request.payment_id))
        missing = provider.lookup("card", str(uuid.uuid4()))
    finally:
        provider.close()
    assert found is not None
    assert (found.reference, found.settled) == (result.provider_reference, True)
    assert missing is None


def test_a_payment_published_twice_to_two_workers_creates_one_payment_intent(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    # Given two workers on Stripe, which (as localstripe) does not dedupe idempotency keys
    start_worker("card", settings=stripe_settings, name="paymq-test-stripe-a")
    start_worker("card", settings=stripe_settings, name="paymq-test-stripe-b")
    # When the same signed payment is delivered three times
    request, message = producer.prepare(card("4242424242424242"))
    producer.publish_many([message, message])
    first = collect_events(results, 2, timeout_s=20)
    producer.publish(message)
    [again] = collect_events(results, 1, timeout_s=20)
    # Then there is one PaymentIntent, and every delivery got the same result event
    assert len(localstripe.intents_for(str(request.payment_id))) == 1
    bodies = {event.message.body for event in [*first, again]}
    assert len(bodies) == 1


def test_an_answer_lost_after_stripe_acted_is_recovered_without_a_second_payment_intent(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    # Given a network that loses Stripe's answer to the PaymentIntent create, after Stripe acted
    with AnswerLosingProxy(
        localstripe.url, method="POST", path="/v1/payment_intents", lose=1
    ) as proxy:
        start_worker("card", settings=on_stripe(topology, proxy.url))
        request, message = producer.prepare(card("4242424242424242"))
        # When the payment is executed, and retried after the unknown outcome
        producer.publish(message)
        [result] = collect_results(results, 1, timeout_s=20)
    # Then the retry found the first PaymentIntent by our reference instead of making another
    assert proxy.lost == 1
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert (result.status, result.provider_reference) == ("succeeded", intent["id"])
    assert result.attempts == 2


def test_an_in_doubt_stripe_payment_is_settled_by_the_reconciler_from_its_payment_intent(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    # Given one attempt per payment, and a network that loses Stripe's answer after it acted
    with AnswerLosingProxy(
        localstripe.url, method="POST", path="/v1/payment_intents", lose=1
    ) as proxy:
        settings = on_stripe(topology, proxy.url).replace(max_attempts=1)
        start_worker("card", settings=settings)
        request, message = producer.prepare(card("4242424242424242"))
        producer.publish(message)
        # When the worker gives up in doubt
        [in_doubt] = collect_results(results, 1, terminal_only=False)
        assert (in_doubt.status, in_doubt.code) == ("in_doubt", "provider_connection_lost")
    # Then the reconciler finds the PaymentIntent by our reference and settles the payment
    with reconciling(on_stripe(topology, localstripe.url)):
        [settled] = collect_results(results, 1, timeout_s=30)
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert (settled.status, settled.provider_reference) == ("succeeded", intent["id"])


def test_a_payer_who_never_authenticates_is_canceled_at_stripe_and_declined(
    stripe_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    localstripe: LocalStripe,
) -> None:
    # Given a 3-D Secure payment, and one second for the payer to authenticate
    start_worker("card", settings=stripe_settings)
    request, message = producer.prepare(card("4000002760003184"))
    producer.publish(message)
    [pending] = collect_results(results, 1, terminal_only=False)
    assert (pending.status, pending.code) == ("pending", "requires_action")
    # When the payer never does, and the reconciler looks after the timeout
    impatient = stripe_settings.replace(payer_action_timeout_s=1.0)
    with reconciling(impatient):
        [settled] = collect_results(results, 1, timeout_s=30)
    # Then the PaymentIntent is canceled at Stripe and the payment declined
    [intent] = localstripe.intents_for(str(request.payment_id))
    assert intent["status"] == "canceled"
    assert (settled.status, settled.code) == ("declined", "payer_action_expired")
    assert (settled.provider, settled.provider_reference) == ("stripe", intent["id"])

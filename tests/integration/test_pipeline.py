"""Producer -> broker -> worker -> sandbox provider -> signed result, for both channels."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.amqp.admin import BrokerAdmin
from common.details import DigitalCurrencyDetails
from common.money import Money
from common.sealing import CardData
from common.settings import Settings
from common.subscriber import ResultStream
from producer.encode import Draft
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import collect_results, wait_until

pytestmark = pytest.mark.integration


def _draft(reference: str, **source: object) -> Draft:
    return Draft(
        amount=Money.from_major("12.34", "USD"),
        merchant_reference=reference,
        idempotency_key=reference,
        **source,  # type: ignore[arg-type]
    )


def test_card_token_payment_succeeds_once_with_a_signed_result(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    # Given a card worker
    start_worker("card")
    # When a token payment is published
    request, message = producer.prepare(_draft("order-1", card_token="tok_visa"))
    producer.publish(message)
    # Then exactly one verified result says it succeeded, and the provider moved money once
    [result] = collect_results(results, 1)
    assert result.payment_id == request.payment_id
    assert result.status == "succeeded"
    assert result.amount == request.amount
    assert result.provider == "sandbox"
    assert result.provider_reference
    assert result.attempts == 1
    effects = control.effects(str(request.payment_id))
    assert len(effects) == 1
    assert effects[0]["amount_minor"] == 1234
    # and nothing is left behind
    stats = admin.stats(topology.broker.topology().work_queue("card"))
    wait_until(lambda: admin.stats(stats.name).messages == 0, what="an empty work queue")
    assert admin.stats(topology.broker.topology().dead_letter_queue).messages == 0


def test_sealed_card_is_charged_and_the_pan_never_leaves_the_worker(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    start_worker("card")
    card = CardData(number="5555555555554444", exp_month=11, exp_year=2031, cvc="737")
    request, message = producer.prepare(_draft("order-sealed", card=card))
    assert b"5555555555554444" not in message.body
    # Nor the CVC in clear: no cvc field, no "737" string value. (Bare digits can turn up in
    # ids, times and base64 ciphertext by chance, so looking for them would prove nothing.)
    assert b'"cvc"' not in message.body
    assert b'"737"' not in message.body
    producer.publish(message)
    [result] = collect_results(results, 1)
    assert result.status == "succeeded"
    assert result.card_last4 == "4444"
    assert "5555555555554444" not in result.model_dump_json()
    [effect] = control.effects(str(request.payment_id))
    assert "5555555555554444" not in str(effect)


def test_digital_currency_payout_succeeds(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    start_worker("digital_currency")
    payout = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x52908400098527886E0F7030069857D2E4169EE7",
    )
    draft = Draft(
        amount=Money(amount_minor=25 * 10**17, currency="ETH"),  # 2.5 ETH: beyond 2^53 wei
        merchant_reference="payout-1",
        idempotency_key="payout-1",
        payout=payout,
    )
    request, message = producer.prepare(draft)
    producer.publish(message)
    [result] = collect_results(results, 1)
    assert result.status == "succeeded"
    assert result.channel == "digital_currency"
    assert result.amount is not None
    assert result.amount.amount_minor == 25 * 10**17
    assert result.provider_reference is not None
    assert result.provider_reference.startswith("0x")
    [effect] = control.effects(str(request.payment_id))
    assert effect["amount_minor"] == str(25 * 10**17)

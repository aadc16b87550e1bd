"""The card channel: tokens pass through, sealed card data opens here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from common.details import DigitalCurrencyDetails
from common.envelope import HEADER_DEAD_LETTER_CODE, InboundMessage, OutboundMessage, sign_message
from common.errors import MalformedMessage
from common.models import PaymentStatus
from common.money import Money
from common.sealing import CardData
from common.signing import REQUEST_TYPE, SignedFields, Signer
from tests.unit.conftest import route_of, unbound
from workers.channels.base import ExecutionContext
from workers.channels.card import CardChannel
from workers.providers.base import CardCharge

if TYPE_CHECKING:
    from tests.unit.conftest import Worker

PAN = "4111111111111111"
CARD = CardData(number=PAN, exp_month=12, exp_year=2030, cvc="737")


@pytest.fixture
def card_worker(
    make_worker: Callable[[Any], Worker],
    fake_card_provider: Any,
    sealing_private_keys: dict[str, Any],
) -> Worker:
    return make_worker(CardChannel(route_of("card", fake_card_provider), sealing_private_keys))


def test_sealed_card_data_is_opened_and_passed_to_the_provider(
    make_request: Callable[..., Any], card_worker: Worker, fake_card_provider: Any
):
    request, message = make_request(card_token=None, card=CARD)
    handled = card_worker.handle(message)
    [(charge, idempotency_key)] = fake_card_provider.charges
    assert charge.card == CARD
    assert charge.token is None
    assert (charge.reference, charge.amount) == (str(request.payment_id), request.amount)
    assert idempotency_key.startswith("paymq_")
    assert handled.status is PaymentStatus.SUCCEEDED
    assert (handled.result.card_last4, handled.result.provider_reference) == ("1111", "ch_1")
    assert PAN.encode() not in handled.events[0].body
    assert PAN not in handled.disposition.summary


def test_a_card_token_is_passed_to_the_provider_without_card_data(
    make_request: Callable[..., Any], card_worker: Worker, fake_card_provider: Any
):
    _, message = make_request(card_token="tok_mastercard", metadata={"cart": "7"})
    assert card_worker.handle(message).status is PaymentStatus.SUCCEEDED
    [(charge, _)] = fake_card_provider.charges
    assert (charge.token, charge.card) == ("tok_mastercard", None)
    assert dict(charge.metadata) == {"cart": "7"}


def test_the_charge_repr_never_shows_the_card():
    charge = CardCharge(reference="p", amount=Money(amount_minor=1, currency="USD"), card=CARD)
    assert PAN not in repr(charge)
    assert "737" not in repr(charge)


def resigned(message: InboundMessage, signer: Signer, message_id: str) -> OutboundMessage:
    """The same body, signed by a legitimate producer under another message id."""
    fields = SignedFields(
        REQUEST_TYPE,
        signer.key_id,
        "card",
        message_id,
        int(str(message.headers["paymq-created-at-ms"])),
        int(str(message.headers["paymq-expires-at-ms"])),
    )
    return sign_message(signer, fields, message.body, exchange="t.requests", routing_key="card")


def test_sealed_data_moved_into_another_signed_message_is_rejected_without_charge(
    make_request: Callable[..., Any],
    card_worker: Worker,
    fake_card_provider: Any,
    signer: Callable[[str], Signer],
    inbound: Callable[..., InboundMessage],
):
    # Given sealed card data lifted from one request into another, validly signed one
    _, original = make_request(card_token=None, card=CARD, message_id="msg-1")
    moved = inbound(resigned(original, signer("producer-1"), "msg-2"))
    # When the card worker handles it
    handled = card_worker.handle(moved)
    # Then the card does not open, nothing is charged, and the message is dead-lettered
    assert fake_card_provider.charges == []
    assert handled.status is PaymentStatus.REJECTED
    assert (handled.result.code, handled.result.attempts) == ("sealed_data_invalid", 0)
    assert handled.dead_letters[0].headers[HEADER_DEAD_LETTER_CODE] == "sealed_data_invalid"


def test_sealed_data_for_a_key_this_worker_lacks_is_rejected_without_charge(
    make_request: Callable[..., Any], make_worker: Callable[[Any], Worker], fake_card_provider: Any
):
    worker = make_worker(CardChannel(route_of("card", fake_card_provider), {}))
    handled = worker.handle(make_request(card_token=None, card=CARD)[1])
    assert handled.status is PaymentStatus.REJECTED
    assert handled.result.code == "sealed_data_invalid"
    assert fake_card_provider.charges == []


def test_the_card_channel_refuses_payout_details(
    make_request: Callable[..., Any], fake_card_provider: Any
):
    request, _ = make_request(
        amount=Money(amount_minor=1, currency="ETH"),
        card_token=None,
        payout=DigitalCurrencyDetails(
            network="ethereum",
            asset="ETH",
            destination_address="0x52908400098527886E0F7030069857D2E4169EE7",
        ),
    )
    context = ExecutionContext(idempotency_key="k", signed_prefix=b"", binding=unbound())
    with pytest.raises(MalformedMessage, match="sent to the card channel"):
        CardChannel(route_of("card", fake_card_provider), {}).execute(request, context)
    assert fake_card_provider.charges == []

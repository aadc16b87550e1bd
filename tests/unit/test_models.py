"""The contract: PaymentRequest, PaymentResult and the channel details union."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from common.details import CardDetails, CardToken, DigitalCurrencyDetails, SealedCard
from common.models import PaymentRequest, PaymentResult, PaymentStatus, result_event_id
from common.money import Money

CREATED = datetime(2030, 3, 17, 12, 0, tzinfo=UTC)
ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
SEALED = SealedCard(
    alg="HPKE-X25519-SHA256-A256GCM+A256GCM",
    kid="seal-1",
    wrapped_key="QUJD",
    nonce="QUJDRA==",
    ciphertext="QUJDREVG",
)


def request_data(**changes: Any) -> dict[str, Any]:
    """A valid card-token request as JSON-shaped data, with `changes` on top."""
    data: dict[str, Any] = {
        "payment_id": "5b1f9c1e-6a4f-4f5e-9d1b-1a2b3c4d5e6f",
        "idempotency_key": "order-1-key",
        "merchant_reference": "order-1",
        "amount": {"amount_minor": 1050, "currency": "USD"},
        "details": {"type": "card", "source": {"type": "token", "token": "tok_visa"}},
        "created_at": "2030-03-17T12:00:00Z",
        "expires_at": "2030-03-18T12:00:00Z",
        "metadata": {"cart": "42"},
    }
    return {**data, **changes}


def payout(asset: str = "ETH") -> dict[str, Any]:
    return {
        "type": "digital_currency",
        "network": "ethereum",
        "asset": asset,
        "destination_address": ADDRESS,
    }


@pytest.mark.parametrize(
    ("amount", "details"),
    [
        (Money(amount_minor=1050, currency="USD"), CardDetails(source=CardToken(token="tok_1"))),
        (Money(amount_minor=100, currency="JPY"), CardDetails(source=SEALED)),
        (
            Money(amount_minor=2**60, currency="ETH"),
            DigitalCurrencyDetails(network="ethereum", asset="ETH", destination_address=ADDRESS),
        ),
    ],
    ids=["card-token", "sealed-card", "digital-currency"],
)
def test_payment_request_round_trips_through_json(amount: Money, details: Any):
    request = PaymentRequest(
        payment_id=uuid.uuid4(),
        idempotency_key="k-1",
        merchant_reference="ref",
        amount=amount,
        details=details,
        created_at=CREATED,
        expires_at=CREATED + timedelta(hours=1),
        metadata={"a": "b"},
    )
    assert PaymentRequest.model_validate_json(request.model_dump_json()) == request


def test_channel_is_the_details_type():
    card = PaymentRequest.model_validate(request_data())
    coins = PaymentRequest.model_validate(
        request_data(amount={"amount_minor": "1", "currency": "ETH"}, details=payout())
    )
    assert (card.channel, coins.channel) == ("card", "digital_currency")


def test_payment_request_is_frozen():
    request = PaymentRequest.model_validate(request_data())
    with pytest.raises(ValidationError):
        request.merchant_reference = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [
        request_data(extra="x"),
        request_data(amount={"amount_minor": 1, "currency": "USD", "x": 1}),
        request_data(details={"type": "card", "source": {"type": "token", "token": "t"}, "x": 1}),
        request_data(details={"type": "card", "source": {"type": "token", "token": "t", "x": 1}}),
    ],
    ids=["top", "amount", "details", "source"],
)
def test_unknown_fields_are_forbidden_at_every_level(data: dict[str, Any]):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PaymentRequest.model_validate(data)


@pytest.mark.parametrize(
    "details",
    [
        {"type": "bank", "iban": "DE00"},
        {"type": "card", "source": {"type": "pan", "number": "4111111111111111"}},
        {"source": {"type": "token", "token": "t"}},
        {"type": "card", "source": SEALED.model_dump() | {"alg": "RSA"}},
    ],
    ids=["unknown-channel", "unknown-source", "no-discriminator", "unknown-alg"],
)
def test_details_outside_the_discriminated_union_are_refused(details: dict[str, Any]):
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate(request_data(details=details))


def test_card_payments_need_a_fiat_currency():
    with pytest.raises(ValidationError, match="card payments need an ISO 4217 currency"):
        PaymentRequest.model_validate(request_data(amount={"amount_minor": 1, "currency": "ETH"}))


@pytest.mark.parametrize("currency", ["USDC", "USD"])
def test_digital_asset_must_equal_the_amount_currency(currency: str):
    with pytest.raises(ValidationError, match="differs from asset ETH"):
        PaymentRequest.model_validate(
            request_data(amount={"amount_minor": 1, "currency": currency}, details=payout("ETH"))
        )


@pytest.mark.parametrize(
    "address", ["0x" + "ab" * 19, "ab" * 21, "0x" + "zz" * 20, "0x" + "ab" * 20 + "\n"]
)
def test_destination_address_must_be_an_evm_address(address: str):
    details = payout() | {"destination_address": address}
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate(
            request_data(amount={"amount_minor": 1, "currency": "ETH"}, details=details)
        )


@pytest.mark.parametrize("expires_at", ["2030-03-17T12:00:00Z", "2030-03-17T11:59:59Z"])
def test_expiry_must_come_after_creation(expires_at: str):
    with pytest.raises(ValidationError, match="expires_at must be later than created_at"):
        PaymentRequest.model_validate(request_data(expires_at=expires_at))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValidationError, match="time zone"):
        PaymentRequest.model_validate(request_data(created_at="2030-03-17T12:00:00"))
    with pytest.raises(ValidationError, match="timezone"):
        PaymentRequest.model_validate(request_data(expires_at=datetime(2030, 3, 18, 12)))


def test_metadata_at_every_limit_is_accepted():
    metadata = {f"{i:02d}" + "k" * 38: "v" * 100 for i in range(20)}
    assert len(json.dumps(metadata).encode()) < 4096
    PaymentRequest.model_validate(request_data(metadata=metadata))
    PaymentRequest.model_validate(request_data(metadata={"k": "v" * 500}))


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{i}": "v" for i in range(21)}, "at most 20"),
        ({"k" * 41: "v"}, "1-40 characters"),
        ({"": "v"}, "1-40 characters"),
        ({"k": "v" * 501}, "exceeds 500"),
        ({f"k{i}": "v" * 500 for i in range(9)}, "at most 4096"),
        ({f"k{i}": "é" * 500 for i in range(5)}, "at most 4096"),
    ],
    ids=["keys", "long-key", "empty-key", "long-value", "total", "total-multibyte"],
)
def test_metadata_beyond_its_limits_is_refused(metadata: dict[str, str], message: str):
    with pytest.raises(ValidationError, match=message):
        PaymentRequest.model_validate(request_data(metadata=metadata))


@pytest.mark.parametrize("key", ["", "has space", "k" * 256, "tab\tkey", "é"])
def test_idempotency_keys_are_1_to_255_printable_ascii(key: str):
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate(request_data(idempotency_key=key))


def result(**changes: Any) -> PaymentResult:
    data: dict[str, Any] = {
        "event_id": result_event_id("p-1", PaymentStatus.SUCCEEDED),
        "payment_id": uuid.uuid4(),
        "request_message_id": "m-1",
        "idempotency_key": "k-1",
        "merchant_reference": "order-1",
        "channel": "card",
        "status": PaymentStatus.SUCCEEDED,
        "amount": Money(amount_minor=2**55, currency="ETH"),
        "provider": "sandbox",
        "provider_reference": "ch_1",
        "card_last4": "4242",
        "attempts": 1,
        "payment_created_at": CREATED,
        "occurred_at": CREATED + timedelta(seconds=2),
    }
    return PaymentResult.model_validate({**data, **changes})


def test_payment_result_round_trips_through_json():
    event = result()
    assert PaymentResult.model_validate_json(event.model_dump_json()) == event


def test_a_result_for_an_untrusted_message_has_null_payment_fields():
    event = result(
        payment_id=None,
        idempotency_key=None,
        merchant_reference=None,
        amount=None,
        payment_created_at=None,
        card_last4=None,
        status=PaymentStatus.REJECTED,
        code="signature_invalid",
    )
    assert PaymentResult.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    "changes",
    [{"card_last4": "424"}, {"card_last4": "42a2"}, {"attempts": -1}, {"status": "lost"}],
)
def test_payment_result_refuses_invalid_fields(changes: dict[str, Any]):
    with pytest.raises(ValidationError):
        result(**changes)


def test_payment_result_is_frozen_and_forbids_unknown_fields():
    with pytest.raises(ValidationError):
        result().status = PaymentStatus.FAILED  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        result(pan="4111111111111111")


def test_result_event_id_is_deterministic_per_subject_and_status():
    first = result_event_id("p-1", PaymentStatus.SUCCEEDED)
    assert first == result_event_id("p-1", PaymentStatus.SUCCEEDED)
    assert first != result_event_id("p-1", PaymentStatus.FAILED)
    assert first != result_event_id("p-2", PaymentStatus.SUCCEEDED)
    assert first.version == 5


def test_only_pending_and_in_doubt_are_not_terminal():
    open_states = {s for s in PaymentStatus if not s.terminal}
    assert open_states == {PaymentStatus.PENDING, PaymentStatus.IN_DOUBT}

"""What the store shows people and API callers (store/views.py), on both databases: a payment
described with the contract's amount and RFC 3339 instants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine

from common.clock import FixedClock, rfc3339
from common.envelope import OutboundMessage
from store.claims import Claims
from store.records import Acquired, Attempt, NewPayment, OutcomeRecord, StoredResult
from store.states import State
from store.views import PaymentViews

pytestmark = pytest.mark.integration

NOW_MS = 1_900_000_000_123
CREATED_MS = 1_899_999_999_456
RESULT = StoredResult.of(
    OutboundMessage(
        exchange="p.results",
        routing_key="card.succeeded",
        body=b'{"amount": {"amount_minor": 1050, "currency": "USD"}}',
        message_id="e-1",
        message_type="paymq.payment_result.v1",
        headers={"paymq-key-id": "worker-1", "paymq-created-at-ms": NOW_MS},
    )
)


@pytest.fixture
def claims(store_engine: Engine) -> Iterator[Claims]:
    claims = Claims(store_engine, FixedClock(NOW_MS), owner="w1", lease_ms=10_000)
    yield claims
    claims.close()


def new_payment(payment_id: str, **changes: object) -> NewPayment:
    fields: dict[str, object] = {
        "payment_id": payment_id,
        "scope": "shop",
        "idempotency_key": f"key-{payment_id}",
        "request_hash": "hash-1",
        "request_message_id": f"m-{payment_id}",
        "channel": "card",
        "merchant_reference": "order-1",
        "amount_minor": 1050,
        "currency": "USD",
        "payment_created_ms": CREATED_MS,
    }
    return NewPayment(**(fields | changes))  # type: ignore[arg-type]


def pay(claims: Claims, payment: NewPayment) -> None:
    claim = claims.claim(payment)
    assert isinstance(claim, Acquired), claim
    outcome = OutcomeRecord(State.SUCCEEDED, 1, False, result=RESULT, provider_reference="ch_1")
    claims.finish(payment.payment_id, outcome, Attempt(1, "succeeded"), token=claim.token)


def test_a_payment_is_described_with_the_contracts_amount_and_rfc_3339_instants(
    store_engine: Engine, claims: Claims
) -> None:
    # Given a card payment of 10.50 USD, paid
    pay(claims, new_payment("00000000-0000-4000-8000-000000000001"))
    # When it is described
    described = PaymentViews(store_engine).describe("00000000-0000-4000-8000-000000000001")
    # Then its amount is written as the result event writes it, a JSON integer of minor units
    assert described is not None
    assert described["amount"] == {"amount_minor": 1050, "currency": "USD"}
    assert described["amount"] == described["result_event"]["amount"]
    # and every instant is RFC 3339, UTC, to the millisecond
    assert described["created_at"] == "2030-03-17T17:46:39.456Z" == rfc3339(CREATED_MS)
    assert described["updated_at"] == rfc3339(NOW_MS)
    instants = [t["at"] for t in described["history"]]
    instants += [a["at"] for a in described["provider_attempts"]]
    assert instants
    assert all(instant == rfc3339(NOW_MS) for instant in instants)
    assert datetime.fromisoformat(described["created_at"]).utcoffset() is not None


def test_an_amount_past_2_pow_53_is_described_as_a_string_of_digits(
    store_engine: Engine, claims: Claims
) -> None:
    # Given a payout of 2.5 ETH in wei, more than a JSON number holds exactly
    wei = 25 * 10**17
    pay(
        claims,
        new_payment(
            "00000000-0000-4000-8000-000000000002",
            channel="digital_currency",
            amount_minor=wei,
            currency="ETH",
        ),
    )
    # When it is described, then the amount is the contract's string form
    described = PaymentViews(store_engine).describe("00000000-0000-4000-8000-000000000002")
    assert described is not None
    assert described["amount"] == {"amount_minor": str(wei), "currency": "ETH"}

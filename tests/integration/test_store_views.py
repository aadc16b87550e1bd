"""What the store shows people and API callers (store/views.py, and the API's submissions), on
both databases: a payment described with the contract's amount and RFC 3339 instants, and
payments looked up by merchant reference or idempotency key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine

from common.clock import FixedClock, rfc3339
from common.envelope import OutboundMessage
from store.claims import Claims
from store.records import (
    Acquired,
    Attempt,
    LookupBy,
    NewPayment,
    OutcomeRecord,
    Page,
    StoredResult,
)
from store.states import State
from store.submissions import Submission, Submissions
from store.views import PaymentViews

pytestmark = pytest.mark.integration

ID = {n: f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 10)}
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


# --- lookups -----------------------------------------------------------------------------------

BOTH = frozenset(LookupBy)
REFERENCE, KEY = LookupBy.MERCHANT_REFERENCE, LookupBy.IDEMPOTENCY_KEY


def add_submission(
    engine: Engine, api_key_id: str, idempotency_key: str, payment_id: str, reference: str
) -> Submission:
    message = StoredResult("p.requests", "card", f"m-{payment_id}", "request", {}, b"{}")
    submission = Submission(
        api_key_id, idempotency_key, "0" * 64, payment_id, "card", message, reference
    )
    return Submissions(engine, FixedClock(NOW_MS)).add(submission)


def test_payments_are_found_by_merchant_reference_across_producers_newest_first(
    store_engine: Engine, claims: Claims
) -> None:
    # Given two producers' payments with one merchant reference, and another payment
    pay(claims, new_payment(ID[1], merchant_reference="order-1001", payment_created_ms=1))
    pay(
        claims, new_payment(ID[2], merchant_reference="order-1001", payment_created_ms=2, scope="b")
    )
    pay(claims, new_payment(ID[3], merchant_reference="order-1002"))
    views = PaymentViews(store_engine)
    # When they are looked up by that reference, then both are found, the newest first
    found = views.find("order-1001", {LookupBy.MERCHANT_REFERENCE}, limit=10)
    assert found == Page((ID[2], ID[1]), more=False)
    # and a reference is not an idempotency key
    assert views.find("order-1001", {LookupBy.IDEMPOTENCY_KEY}, limit=10).items == ()


def test_a_payment_is_found_by_its_producers_key_or_by_the_idempotency_key_sent_over_http(
    store_engine: Engine, claims: Claims
) -> None:
    # Given a producer's payment, and one taken over HTTP (the worker sees `shop:order-7`)
    pay(claims, new_payment(ID[1], idempotency_key="order-7"))
    pay(claims, new_payment(ID[2], idempotency_key="shop:order-7", scope="api-gateway"))
    add_submission(store_engine, "shop", "order-7", ID[2], "order-1")
    views = PaymentViews(store_engine)
    # When they are looked up by key
    by_header = views.find("order-7", {LookupBy.IDEMPOTENCY_KEY}, limit=10)
    by_stored = views.find("shop:order-7", BOTH, limit=10)
    # Then "order-7" finds both: the producer's key, and the HTTP caller's Idempotency-Key
    assert set(by_header.items) == {ID[1], ID[2]}
    assert by_stored.items == (ID[2],)


def test_a_lookup_gives_at_most_its_limit_and_says_there_are_more(
    store_engine: Engine, claims: Claims
) -> None:
    for n in (1, 2, 3):
        pay(claims, new_payment(ID[n], merchant_reference="busy", payment_created_ms=n))
    views = PaymentViews(store_engine)

    assert views.find("busy", BOTH, limit=2) == Page((ID[3], ID[2]), more=True)
    assert views.find("busy", BOTH, limit=3) == Page((ID[3], ID[2], ID[1]), more=False)
    with pytest.raises(ValueError, match="at least 1"):
        views.find("busy", BOTH, limit=0)
    with pytest.raises(ValueError, match="compares its text"):
        views.find("busy", set(), limit=1)


def test_an_api_key_finds_only_its_own_submissions_taken_or_not(store_engine: Engine) -> None:
    # Given submissions of two API keys with one reference, none taken by a worker yet
    add_submission(store_engine, "shop", "k-1", ID[1], "order-1")
    add_submission(store_engine, "shop", "k-2", ID[2], "order-1")
    add_submission(store_engine, "other", "k-1", ID[3], "order-1")
    submissions = Submissions(store_engine, FixedClock(NOW_MS))
    # When one key looks its reference up, then it finds its own two, not the other key's
    page = submissions.matching("shop", REFERENCE, "order-1", limit=5)
    assert sorted(s.payment_id for s in page.items) == [ID[1], ID[2]]
    assert all(s.merchant_reference == "order-1" for s in page.items)
    assert not page.more
    assert submissions.matching("shop", REFERENCE, "order-1", limit=1).more
    # and by Idempotency-Key, its own one
    by_key = submissions.matching("other", KEY, "k-1", limit=5)
    assert [s.payment_id for s in by_key.items] == [ID[3]]
    assert submissions.matching("shop", KEY, "order-1", limit=5).items == ()

"""Taking a payment over HTTP: one payment per API key and Idempotency-Key, conflicts refused,
the stored signed message republished until a worker has taken the payment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.clock import FixedClock
from common.envelope import OutboundMessage
from common.errors import BrokerUnavailable
from common.models import PaymentRequest
from common.signing import Signer
from common.topology import Topology
from producer.api.intake import IdempotencyConflict, Intake, body_digest
from producer.api.keys import ApiKey
from producer.api.schemas import PaymentIn
from producer.encode import Draft, encode_request
from store.submissions import Submissions
from tests.stores import sqlite_engine

SHOP = ApiKey("shop", "0" * 64, ("card",))
OTHER = ApiKey("other", "1" * 64, ("card",))
NOW_MS = 1_900_000_000_000


def body(amount_minor: int = 1999, **extra: object) -> PaymentIn:
    return PaymentIn.model_validate(
        {
            "merchant_reference": "order-1",
            "amount": {"amount_minor": amount_minor, "currency": "USD"},
            "details": {"type": "card", "token": "tok_visa"},
            **extra,
        }
    )


class Gateway:
    """The intake's two seams: signing (the real encoder) and publishing (recorded)."""

    def __init__(self) -> None:
        self.signer = Signer("gateway-1", Ed25519PrivateKey.generate())
        self.published: list[OutboundMessage] = []
        self.broker_down = False
        self.taken: set[str] = set()

    def prepare(self, draft: Draft, ttl_s: int | None) -> tuple[PaymentRequest, OutboundMessage]:
        return encode_request(
            draft,
            signer=self.signer,
            topology=Topology(prefix="t"),
            created_at_ms=NOW_MS,
            expires_at_ms=NOW_MS + (ttl_s or 3600) * 1000,
            sealing_key=None,
        )

    def publish(self, message: OutboundMessage) -> None:
        if self.broker_down:
            raise BrokerUnavailable("down")
        self.published.append(message)


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


@pytest.fixture
def intake(tmp_path: Path, gateway: Gateway) -> Iterator[Intake]:
    with sqlite_engine(tmp_path) as engine:
        yield Intake(
            Submissions(engine, FixedClock(NOW_MS)),
            prepare=gateway.prepare,
            publish=gateway.publish,
            taken_by_worker=lambda submission: submission.payment_id in gateway.taken,
        )


def test_the_same_key_and_body_answer_one_payment_with_the_same_signed_bytes(
    intake: Intake, gateway: Gateway
) -> None:
    first = intake.take(SHOP, "k-1", body())
    again = intake.take(SHOP, "k-1", body())

    assert (first.replayed, again.replayed) == (False, True)
    assert again.submission.payment_id == first.submission.payment_id
    assert [m.body for m in gateway.published] == [gateway.published[0].body] * 2
    assert gateway.published[0].message_id == gateway.published[1].message_id


def test_another_body_under_the_same_key_is_a_conflict(intake: Intake) -> None:
    intake.take(SHOP, "k-1", body(1999))
    with pytest.raises(IdempotencyConflict, match="another body"):
        intake.take(SHOP, "k-1", body(2999))


def test_two_callers_may_use_one_idempotency_key(intake: Intake, gateway: Gateway) -> None:
    mine = intake.take(SHOP, "k-1", body())
    theirs = intake.take(OTHER, "k-1", body())

    assert mine.submission.payment_id != theirs.submission.payment_id
    requests = [PaymentRequest.model_validate_json(m.body) for m in gateway.published]
    assert [r.idempotency_key for r in requests] == ["shop:k-1", "other:k-1"]


def test_a_publish_that_failed_is_repaired_by_repeating_the_request(
    intake: Intake, gateway: Gateway
) -> None:
    gateway.broker_down = True
    with pytest.raises(BrokerUnavailable):
        intake.take(SHOP, "k-1", body())
    gateway.broker_down = False

    repeated = intake.take(SHOP, "k-1", body())

    assert repeated.replayed  # the payment signed the first time, not a new one
    [published] = gateway.published
    assert str(PaymentRequest.model_validate_json(published.body).payment_id) == (
        repeated.submission.payment_id
    )


def test_once_a_worker_has_the_payment_a_repeat_publishes_nothing(
    intake: Intake, gateway: Gateway
) -> None:
    first = intake.take(SHOP, "k-1", body())
    gateway.taken.add(first.submission.payment_id)

    intake.take(SHOP, "k-1", body())

    assert len(gateway.published) == 1


def test_the_body_digest_ignores_key_order_and_sees_content() -> None:
    reordered = PaymentIn.model_validate_json(
        '{"details": {"token": "tok_visa", "type": "card"}, "merchant_reference": "order-1",'
        ' "amount": {"currency": "USD", "amount_minor": 1999}}'
    )
    assert body_digest(reordered) == body_digest(body())
    assert body_digest(body(2000)) != body_digest(body())
    assert body_digest(body(metadata={"a": "b"})) != body_digest(body())

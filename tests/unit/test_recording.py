"""The one recording path of the handler and the reconciler: the stored record holds the exact
event that is published, and says what the result says."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from common.errors import NoEffectAtProvider, PaymentDeclined
from common.models import PaymentStatus
from common.money import Money
from common.signing import Signer
from common.topology import Topology
from store.states import State
from workers.recording import recorded
from workers.results import Outcome, Subject, result_for

NOW_MS = 1_800_000_000_000
SUBJECT = Subject(
    event_key="5d1c2b36-8f1e-4c55-9a53-1f0f5f1b7a10",
    request_message_id="m-1",
    payment_id=uuid.UUID("5d1c2b36-8f1e-4c55-9a53-1f0f5f1b7a10"),
    idempotency_key="order-1",
    merchant_reference="order-1",
    amount=Money(amount_minor=1999, currency="USD"),
)


def test_the_record_stores_the_very_event_that_is_published(
    signer: Callable[[str], Signer], topology: Topology
) -> None:
    error = PaymentDeclined(
        "no", code="card_declined", provider="sandbox", provider_reference="ch_9"
    )
    result = result_for("card", SUBJECT, Outcome(PaymentStatus.DECLINED, 2, error=error), NOW_MS)

    done = recorded(
        result,
        signer=signer("worker-1"),
        topology=topology,
        outcome_unknown=False,
        next_check_ms=None,
    )

    assert done.record.result is not None
    assert done.record.result.message() == done.event
    assert done.stored == done.record.result
    assert (done.state, done.record.attempts, done.record.code) == (
        State.DECLINED,
        2,
        "card_declined",
    )
    assert (done.record.provider, done.record.provider_reference) == ("sandbox", "ch_9")


def test_the_payments_own_provider_stands_in_where_the_result_names_none(
    signer: Callable[[str], Signer], topology: Topology
) -> None:
    error = NoEffectAtProvider("the provider has no record of the payment")
    result = result_for("card", SUBJECT, Outcome(PaymentStatus.FAILED, 1, error=error), NOW_MS)

    done = recorded(
        result,
        signer=signer("worker-1"),
        topology=topology,
        outcome_unknown=True,
        next_check_ms=None,
        provider="stripe",
        provider_reference="pi_1",
    )

    assert (done.record.provider, done.record.provider_reference) == ("stripe", "pi_1")
    assert done.record.outcome_unknown is True
    assert done.record.reason == result.reason

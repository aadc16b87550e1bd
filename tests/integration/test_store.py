"""The payment store on both databases: claims, conflicts, outcomes and the stored result."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from common.clock import FixedClock
from common.envelope import OutboundMessage
from common.errors import ClaimLost
from store.checks import Checks
from store.claims import Claims
from store.records import (
    Acquired,
    AlreadyDone,
    Attempt,
    Busy,
    Conflict,
    NewPayment,
    OutcomeRecord,
    StoredResult,
)
from store.states import State
from store.views import PaymentViews

pytestmark = pytest.mark.integration

LEASE_MS = 10_000


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    return store_engine


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_900_000_000_000)


_opened: list[Claims] = []


def store(engine: Engine, clock: FixedClock, owner: str) -> Claims:
    claims = Claims(engine, clock, owner=owner, lease_ms=LEASE_MS)
    _opened.append(claims)
    return claims


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    """Each worker's store here has its writer thread: stopped after the test."""
    yield
    while _opened:
        _opened.pop().close()


def checks(engine: Engine, clock: FixedClock) -> Checks:
    return Checks(engine, clock)


def payment(payment_id: str = "00000000-0000-0000-0000-000000000001", **changes: str) -> NewPayment:
    fields = {
        "payment_id": payment_id,
        "scope": "shop",
        "idempotency_key": f"key-{payment_id}",
        "request_hash": "hash-1",
        "request_message_id": "m-1",
        "channel": "card",
        "merchant_reference": "order-1",
        "amount_minor": 1050,
        "currency": "USD",
        "payment_created_ms": 1_899_999_999_000,
    }
    return NewPayment(**(fields | changes))  # type: ignore[arg-type]


RESULT = StoredResult.of(
    OutboundMessage(
        exchange="p.results",
        routing_key="card.succeeded",
        body=b'{"event": 1}',
        message_id="e-1",
        message_type="paymq.payment_result.v1",
        headers={"paymq-key-id": "worker-1", "paymq-created-at-ms": 1_900_000_000_000},
    )
)


def succeeded(attempts: int = 1) -> OutcomeRecord:
    return OutcomeRecord(State.SUCCEEDED, attempts, False, result=RESULT, provider_reference="ch_1")


def acquired(claim: object) -> Acquired:
    assert isinstance(claim, Acquired), claim
    return claim


def test_the_first_claim_wins_and_a_concurrent_one_waits(engine: Engine, clock: FixedClock):
    first, second = store(engine, clock, "w1"), store(engine, clock, "w2")
    assert first.claim(payment()) == Acquired(attempts=0, outcome_unknown=False)
    assert second.claim(payment()) == Busy(until_ms=clock.now_ms() + LEASE_MS)


def test_a_finished_payment_repeats_its_stored_result_byte_for_byte(
    engine: Engine, clock: FixedClock
):
    worker = store(engine, clock, "w1")
    claim = acquired(worker.claim(payment()))
    worker.finish(payment().payment_id, succeeded(), Attempt(1, "succeeded"), token=claim.token)
    again = store(engine, clock, "w2").claim(payment())
    assert again == AlreadyDone(State.SUCCEEDED, RESULT)
    assert isinstance(again, AlreadyDone)
    assert again.result.message() == RESULT.message()


def test_the_same_key_for_another_request_is_a_conflict(engine: Engine, clock: FixedClock):
    worker = store(engine, clock, "w1")
    worker.claim(payment())
    other = payment(request_hash="hash-2")
    assert worker.claim(other) == Conflict(existing_payment_id=other.payment_id)
    reused_key = payment(
        "00000000-0000-0000-0000-000000000002",
        idempotency_key="key-00000000-0000-0000-0000-000000000001",
    )
    assert worker.claim(reused_key) == Conflict(existing_payment_id=payment().payment_id)


def test_a_claim_left_by_a_dead_worker_is_taken_over_after_its_lease(
    engine: Engine, clock: FixedClock
):
    # Given a worker that claimed the payment and died
    dead = acquired(store(engine, clock, "dead").claim(payment()))
    # When its lease runs out, another worker takes the payment over, knowing that the dead one
    # may have reached the provider
    clock.advance(LEASE_MS + 1)
    survivor = store(engine, clock, "alive")
    assert survivor.claim(payment()) == Acquired(attempts=0, outcome_unknown=True, takeovers=1)
    # and the dead worker, had it come back, could no longer record an outcome
    with pytest.raises(ClaimLost):
        store(engine, clock, "dead").finish(
            payment().payment_id, succeeded(), None, token=dead.token
        )
    transitions, _ = PaymentViews(engine).history(payment().payment_id)
    assert [t["to_state"] for t in transitions] == ["processing", "processing"]
    # and every further takeover is counted (poison detection)
    clock.advance(LEASE_MS + 1)
    third = store(engine, clock, "third").claim(payment())
    assert third == Acquired(attempts=0, outcome_unknown=True, takeovers=2)


def test_retries_keep_their_attempts_and_unknown_outcome(engine: Engine, clock: FixedClock):
    worker = store(engine, clock, "w1")
    claim = acquired(worker.claim(payment()))
    worker.retry_later(
        payment().payment_id,
        token=claim.token,
        attempts=1,
        outcome_unknown=True,
        attempt=Attempt(1, "unknown", code="provider_timeout"),
    )
    assert store(engine, clock, "w2").claim(payment()) == Acquired(attempts=1, outcome_unknown=True)
    _, attempts = PaymentViews(engine).history(payment().payment_id)
    assert [(a["attempt"], a["outcome"], a["code"]) for a in attempts] == [
        (1, "unknown", "provider_timeout")
    ]


def test_in_doubt_payments_come_due_for_one_reconciler_at_a_time(engine: Engine, clock: FixedClock):
    worker = store(engine, clock, "w1")
    reconciler = checks(engine, clock)
    claim = acquired(worker.claim(payment()))
    in_doubt = OutcomeRecord(
        State.IN_DOUBT, 3, True, result=RESULT, next_check_ms=clock.now_ms() + 500
    )
    worker.finish(payment().payment_id, in_doubt, None, token=claim.token)
    assert reconciler.due_for_check(10) == []
    clock.advance(500)
    assert reconciler.due_for_check(10) == [payment().payment_id]
    first = checks(engine, clock).take_check(payment().payment_id, hold_ms=60_000)
    assert first is not None
    assert first.checks == 1
    # as typed values, on either database
    assert (first.state, first.amount_minor, first.outcome_unknown, first.attempts) == (
        State.IN_DOUBT,
        1050,
        True,
        3,
    )
    assert checks(engine, clock).take_check(payment().payment_id, hold_ms=60_000) is None


def test_a_stored_result_stays_unpublished_until_its_publish_is_confirmed(
    engine: Engine, clock: FixedClock
):
    # Given a worker that stored a result, and whose publish of it was never confirmed
    worker = store(engine, clock, "w1")
    reconciler = checks(engine, clock)
    claim = acquired(worker.claim(payment()))
    worker.finish(payment().payment_id, succeeded(), None, token=claim.token)
    # Then the sweep finds it once it is old enough, whatever became of the delivery
    assert reconciler.unpublished_results(older_than_ms=500, limit=10) == []
    clock.advance(1_000)
    assert reconciler.unpublished_results(older_than_ms=500, limit=10) == [
        (payment().payment_id, RESULT)
    ]
    # And once the broker confirms it, nothing is left to sweep
    worker.mark_published([(payment().payment_id, RESULT.message_id)])
    assert reconciler.unpublished_results(older_than_ms=0, limit=10) == []


def test_a_confirm_of_an_older_result_leaves_the_newer_one_marked(
    engine: Engine, clock: FixedClock
):
    # Given an in-doubt result stored by a worker, then settled by the reconciler
    worker = store(engine, clock, "w1")
    reconciler = checks(engine, clock)
    claim = acquired(worker.claim(payment()))
    worker.finish(
        payment().payment_id,
        OutcomeRecord(State.IN_DOUBT, 1, True, result=RESULT),
        None,
        token=claim.token,
    )
    newer = StoredResult.of(dataclasses.replace(RESULT.message(), message_id="e-2"))
    settled = OutcomeRecord(State.SUCCEEDED, 1, True, result=newer)
    reconciler.finish(payment().payment_id, settled)
    # When the worker's publish of the in-doubt event is confirmed only now
    worker.mark_published([(payment().payment_id, RESULT.message_id)])
    # Then the succeeded event still waits for its own confirm
    clock.advance(1_000)
    assert reconciler.unpublished_results(older_than_ms=500, limit=10) == [
        (payment().payment_id, newer)
    ]


def test_a_stale_thread_cannot_record_after_a_redelivery_to_its_own_process_took_over(
    engine: Engine, clock: FixedClock
):
    # Given one worker process whose thread claimed a payment and then stalled past its lease
    process = store(engine, clock, "host:42:abc")
    stale = acquired(process.claim(payment()))
    clock.advance(LEASE_MS + 1)
    # When the payment's redelivery reaches the same process and takes the claim over
    current = acquired(process.claim(payment()))
    assert current.outcome_unknown
    # Then the stale thread can neither record an outcome nor release or reroute the claim
    with pytest.raises(ClaimLost):
        process.finish(payment().payment_id, succeeded(), None, token=stale.token)
    with pytest.raises(ClaimLost):
        process.retry_later(
            payment().payment_id, token=stale.token, attempts=1, outcome_unknown=True, attempt=None
        )
    with pytest.raises(ClaimLost):
        process.bind_provider(payment().payment_id, stale.token, "stripe", "failover")
    # And the current holder records the outcome
    process.finish(payment().payment_id, succeeded(), None, token=current.token)
    assert isinstance(process.claim(payment()), AlreadyDone)


@pytest.mark.parametrize("state", ["processing", "retrying"])
def test_a_claim_nobody_touched_for_long_is_found_and_put_in_doubt_once(
    engine: Engine, clock: FixedClock, state: str
):
    # Given a claimed payment whose delivery was dead-lettered: processing (its worker died)
    # or retrying (it was waiting in a retry tier)
    worker = store(engine, clock, "w1")
    reconciler = checks(engine, clock)
    claim = acquired(worker.claim(payment()))
    if state == "retrying":
        worker.retry_later(
            payment().payment_id, token=claim.token, attempts=1, outcome_unknown=False, attempt=None
        )
    # Then it is not abandoned while young
    clock.advance(LEASE_MS + 1)
    assert reconciler.abandoned_claims(older_than_ms=60_000, limit=10) == []
    # But is once nobody has touched it for long enough
    clock.advance(60_000)
    [row] = reconciler.abandoned_claims(older_than_ms=60_000, limit=10)
    assert row.state == state
    in_doubt = OutcomeRecord(State.IN_DOUBT, 1, True, code="claim_abandoned", result=RESULT)
    assert reconciler.settle_abandoned(row, in_doubt)
    # And a second sweeper holding the same old row cannot move it again
    assert not reconciler.settle_abandoned(row, in_doubt)
    assert reconciler.abandoned_claims(older_than_ms=0, limit=10) == []
    assert reconciler.unpublished_results(older_than_ms=0, limit=10) == [
        (payment().payment_id, RESULT)
    ]


def test_an_abandoned_claim_taken_back_by_a_delivery_is_left_alone(
    engine: Engine, clock: FixedClock
):
    # Given a claim found abandoned by a sweep
    acquired(store(engine, clock, "w1").claim(payment()))
    clock.advance(120_000)
    sweeper = checks(engine, clock)
    [row] = sweeper.abandoned_claims(older_than_ms=60_000, limit=10)
    # When a delivery of the payment takes the claim over before the sweep moves it
    acquired(store(engine, clock, "w2").claim(payment()))
    # Then the sweep does not move it
    outcome = OutcomeRecord(State.IN_DOUBT, 0, True, code="claim_abandoned", result=RESULT)
    assert not sweeper.settle_abandoned(row, outcome)


def test_a_payment_rerouted_before_its_worker_died_is_taken_over_bound_to_the_new_provider(
    engine: Engine, clock: FixedClock
):
    # Given a payment claimed for its channel's first provider
    first = store(engine, clock, "w1")
    claim = acquired(first.claim(payment(provider="stripe")))
    assert claim == Acquired(0, False, provider="stripe")
    # When its worker records a failover to the sandbox, then dies mid-call
    first.bind_provider(
        payment().payment_id, claim.token, "sandbox", "routed to sandbox after stripe: x"
    )
    clock.advance(LEASE_MS + 1)
    # Then the next worker takes it over pinned to the sandbox, the one that may have acted
    taken = store(engine, clock, "w2").claim(payment(provider="stripe"))
    assert taken == Acquired(attempts=0, outcome_unknown=True, takeovers=1, provider="sandbox")
    moves, _ = PaymentViews(engine).history(payment().payment_id)
    assert "routed to sandbox after stripe: x" in [move["reason"] for move in moves]


def test_only_the_claim_holder_can_reroute_a_payment(engine: Engine, clock: FixedClock):
    acquired(store(engine, clock, "w1").claim(payment(provider="stripe")))
    with pytest.raises(ClaimLost):
        store(engine, clock, "w2").bind_provider(
            payment().payment_id, "not-the-token", "sandbox", "reason"
        )


def test_an_outcome_without_a_provider_keeps_the_one_the_payment_was_sent_to(
    engine: Engine, clock: FixedClock
):
    worker = store(engine, clock, "w1")
    claim = acquired(worker.claim(payment(provider="stripe")))
    in_doubt = OutcomeRecord(State.IN_DOUBT, 1, True, result=RESULT, next_check_ms=clock.now_ms())
    worker.finish(
        payment().payment_id,
        in_doubt,
        Attempt(1, "unknown", code="provider_timeout"),
        token=claim.token,
    )
    row = PaymentViews(engine).get(payment().payment_id)
    assert row is not None
    assert row["provider"] == "stripe"

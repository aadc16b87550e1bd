"""The reconciler settles pending and in-doubt payments from the provider's records."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from common.clock import FixedClock
from common.envelope import OutboundMessage
from common.errors import NoEffectAtProvider, ProviderRejected, ProviderUnavailable
from common.models import PayerAction, PaymentResult
from common.signing import Signer
from common.topology import Topology
from store.checks import Checks
from store.claims import Claims
from store.records import Acquired, NewPayment, OutcomeRecord, StoredResult
from store.states import State
from store.views import PaymentViews
from tests.stores import sqlite_engine
from workers.providers.base import ProviderReceipt
from workers.reconciler import Reconciler, Sweeps

PAYMENT = NewPayment(
    payment_id="7d4f5c2e-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
    scope="shop",
    idempotency_key="k-1",
    request_hash="h",
    request_message_id="m-1",
    channel="card",
    merchant_reference="order-1",
    amount_minor=1050,
    currency="USD",
    payment_created_ms=1_900_000_000_000,
)
SCHEDULE_S = (1.0, 2.0, 4.0)
FIRST_EVENT = StoredResult(
    "t.results", "card.in_doubt", "e-0", "paymq.payment_result.v1", {}, b"{}"
)


class ScriptedLookup:
    def __init__(self, *answers: ProviderReceipt | Exception | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str]] = []
        self.canceled: list[str] = []
        #: What cancel() raises, if anything (a provider refusing to cancel).
        self.cancel_error: Exception | None = None

    def cancel(self, channel: str, provider_reference: str, provider: str | None) -> None:
        if self.cancel_error is not None:
            raise self.cancel_error
        self.canceled.append(provider_reference)

    def lookup(
        self, channel: str, reference: str, provider: str | None = None
    ) -> ProviderReceipt | None:
        self.asked.append((channel, reference))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_900_000_100_000)


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Claims:
    with sqlite_engine(tmp_path) as engine:
        claims = Claims(engine, clock, owner="w", lease_ms=10_000)
        yield claims  # type: ignore[misc]
        claims.close()


@pytest.fixture
def checks(store: Claims, clock: FixedClock) -> Checks:
    """The reconciler's side of the same store."""
    return Checks(store.engine, clock)


@pytest.fixture
def views(store: Claims) -> PaymentViews:
    return PaymentViews(store.engine)


@pytest.fixture
def published() -> list[OutboundMessage]:
    return []


@pytest.fixture
def reconciler_for(
    checks: Checks,
    clock: FixedClock,
    published: list[OutboundMessage],
    signer: Callable[[str], Signer],
) -> Callable[[ScriptedLookup], Reconciler]:
    return lambda lookup, payer_action_timeout_s=3600.0, sweeps=None: Reconciler(
        checks,
        lookup,
        signer=signer("worker-1"),
        topology=Topology(prefix="t"),
        publish=published.append,
        clock=clock,
        schedule_s=SCHEDULE_S,
        payer_action_timeout_s=payer_action_timeout_s,
        sweeps=sweeps,
    )


def enter(store: Claims, clock: FixedClock, state: State, provider: str | None = None) -> None:
    """A worker stored the payment in `state` with its first event, and the broker confirmed
    that event."""
    claim = store.claim(PAYMENT)
    assert isinstance(claim, Acquired)
    due = clock.now_ms() + 1_000
    store.finish(
        PAYMENT.payment_id,
        OutcomeRecord(state, 3, True, provider=provider, result=FIRST_EVENT, next_check_ms=due),
        None,
        token=claim.token,
    )
    store.mark_published([(PAYMENT.payment_id, FIRST_EVENT.message_id)])


def test_an_in_doubt_payment_the_provider_made_is_settled_as_succeeded(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    enter(store, clock, State.IN_DOUBT)
    lookup = ScriptedLookup(ProviderReceipt("sandbox", "ch_9"))
    clock.advance(1_000)
    done = reconciler_for(lookup).run_once()
    assert (done.checked, done.resolved) == (1, 1)
    assert lookup.asked == [("card", PAYMENT.payment_id)]
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert (row["state"], row["provider_reference"], row["result_unpublished"]) == (
        "succeeded",
        "ch_9",
        False,
    )
    [event] = published
    assert event.routing_key == "card.succeeded"
    assert StoredResult.of(event).body == bytes(row["result_body"])


def test_an_in_doubt_payment_the_provider_never_saw_fails_after_the_last_check(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    enter(store, clock, State.IN_DOUBT)
    reconciler = reconciler_for(ScriptedLookup(None, None, None))
    for delay_s in (1, 2, 4):
        clock.advance(delay_s * 1000)
        reconciler.run_once()
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert (row["state"], row["code"]) == ("failed", "no_effect_at_provider")
    assert [e.routing_key for e in published] == ["card.failed"]


def test_a_provider_that_cannot_answer_only_delays_the_check(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    enter(store, clock, State.IN_DOUBT)
    clock.advance(1_000)
    done = reconciler_for(ScriptedLookup(ProviderUnavailable("down"))).run_once()
    assert (done.checked, done.rescheduled) == (1, 1)
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert row["state"] == "in_doubt"
    assert published == []


def test_a_pending_payment_settles_when_the_provider_says_so(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    enter(store, clock, State.PENDING)
    pending = ProviderReceipt("sandbox", "0xabc", settled=False)
    reconciler = reconciler_for(ScriptedLookup(pending, ProviderReceipt("sandbox", "0xabc")))
    clock.advance(1_000)
    reconciler.run_once()
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert row["state"] == "pending"
    clock.advance(2_000)
    reconciler.run_once()
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert row["state"] == "succeeded"
    assert [e.routing_key for e in published] == ["card.succeeded"]


def test_a_result_whose_publish_failed_is_published_on_a_later_pass(
    store: Claims,
    checks: Checks,
    views: PaymentViews,
    clock: FixedClock,
    reconciler_for: Callable[..., Reconciler],
    signer: Callable[[str], Signer],
):
    enter(store, clock, State.IN_DOUBT)
    attempts: list[OutboundMessage] = []

    def flaky(message: OutboundMessage) -> None:
        attempts.append(message)
        if len(attempts) == 1:
            raise ProviderUnavailable("broker away")

    reconciler = Reconciler(
        checks,
        ScriptedLookup(ProviderReceipt("sandbox", "ch_1")),
        signer=signer("worker-1"),
        topology=Topology(prefix="t"),
        publish=flaky,
        clock=clock,
        schedule_s=SCHEDULE_S,
    )
    clock.advance(1_000)
    reconciler.run_once()
    clock.advance(60_000)
    assert reconciler.run_once().republished == 1
    assert [a.body for a in attempts] == [attempts[0].body] * 2
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert not row["result_unpublished"]


WAITING_FOR_PAYER = ProviderReceipt(
    "stripe",
    "pi_1",
    settled=False,
    action=PayerAction(type="sdk", client_secret="pi_1_secret_x"),
)


def test_a_payment_waiting_for_its_payer_past_the_timeout_is_canceled_and_declined(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    # Given a pending payment created 101 s ago, still waiting for its payer
    enter(store, clock, State.PENDING)
    lookup = ScriptedLookup(WAITING_FOR_PAYER)
    clock.advance(1_000)
    # When the reconciler looks with a 60 s timeout for the payer
    done = reconciler_for(lookup, payer_action_timeout_s=60).run_once()
    # Then it canceled the PaymentIntent and declined the payment
    assert (done.checked, done.resolved, lookup.canceled) == (1, 1, ["pi_1"])
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert (row["state"], row["code"]) == ("declined", "payer_action_expired")
    result = PaymentResult.model_validate_json(published[-1].body)
    assert (result.status, result.provider, result.provider_reference) == (
        "declined",
        "stripe",
        "pi_1",
    )


def test_a_payment_waiting_for_its_payer_within_the_timeout_is_left_to_wait(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    reconciler_for: Callable[..., Reconciler],
):
    enter(store, clock, State.PENDING)
    lookup = ScriptedLookup(WAITING_FOR_PAYER)
    clock.advance(1_000)
    done = reconciler_for(lookup, payer_action_timeout_s=3600).run_once()
    assert (done.rescheduled, lookup.canceled) == (1, [])
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert row["state"] == "pending"


def test_a_cancel_the_provider_refuses_leaves_the_payment_for_the_next_check(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    reconciler_for: Callable[..., Reconciler],
):
    # The payer completed it a moment before the cancel: the provider refuses to cancel
    enter(store, clock, State.PENDING)
    lookup = ScriptedLookup(WAITING_FOR_PAYER)
    lookup.cancel_error = ProviderRejected("cannot cancel a succeeded PaymentIntent")
    clock.advance(1_000)
    done = reconciler_for(lookup, payer_action_timeout_s=60).run_once()
    assert done.rescheduled == 1
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert row["state"] == "pending"


@pytest.mark.parametrize("state", [State.PENDING, State.IN_DOUBT])
@pytest.mark.parametrize("code", ["reverted", "dropped_and_replaced"])
def test_a_payment_the_provider_shows_moved_nothing_fails_with_its_code(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
    state: State,
    code: str,
):
    # E.g. an on-chain payout whose transaction reverted, or whose nonce another one took.
    enter(store, clock, state)
    clock.advance(1_000)
    lookup = ScriptedLookup(NoEffectAtProvider("no value moved", code=code))
    done = reconciler_for(lookup).run_once()
    assert (done.checked, done.resolved) == (1, 1)
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert (row["state"], row["code"]) == ("failed", code)
    assert [e.routing_key for e in published] == ["card.failed"]


@pytest.mark.parametrize(
    ("answer", "line", "level"),
    [
        (ProviderReceipt("sandbox", "ch_9"), "in_doubt -> succeeded", logging.INFO),
        (NoEffectAtProvider("no value moved"), "in_doubt -> failed", logging.WARNING),
    ],
    ids=["succeeded", "failed"],
)
def test_a_payment_reconciled_as_failed_is_logged_at_warning(
    store: Claims,
    clock: FixedClock,
    reconciler_for: Callable[..., Reconciler],
    caplog: pytest.LogCaptureFixture,
    answer: ProviderReceipt | Exception,
    line: str,
    level: int,
):
    enter(store, clock, State.IN_DOUBT)
    clock.advance(1_000)
    with caplog.at_level(logging.INFO, logger="paymq.reconciler"):
        reconciler_for(ScriptedLookup(answer)).run_once()
    [record] = [r for r in caplog.records if "reconciled:" in r.getMessage()]
    assert record.getMessage() == f"payment {PAYMENT.payment_id} reconciled: {line}"
    assert record.levelno == level


@pytest.mark.parametrize(
    ("configured", "checked"),
    [(("sandbox", "stripe"), 0), (("sandbox", "ethereum"), 1), (None, 1)],
)
def test_a_reconciler_checks_only_payments_at_providers_it_can_ask(
    store: Claims,
    checks: Checks,
    clock: FixedClock,
    signer: Callable[[str], Signer],
    configured: tuple[str, ...] | None,
    checked: int,
):
    # A card worker's reconciler without the hot wallet leaves chain payouts to one with it,
    # instead of taking their checks and pushing them back.
    enter(store, clock, State.PENDING, provider="ethereum")
    clock.advance(1_000)
    lookup = ScriptedLookup(ProviderReceipt("ethereum", "0xabc", settled=False))
    reconciler = Reconciler(
        checks,
        lookup,
        signer=signer("worker-1"),
        topology=Topology(prefix="t"),
        publish=lambda _message: None,
        clock=clock,
        schedule_s=SCHEDULE_S,
        providers=configured,
    )
    assert reconciler.run_once().checked == checked
    assert len(lookup.asked) == checked


def test_a_result_a_worker_stored_but_never_got_confirmed_is_published_again(
    store: Claims,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
):
    # Given a worker that stored a succeeded result and lost its channel before the confirm
    # (its delivery then dead-lettered, or redelivered to a worker that found it done and
    # acked without publishing: nothing else will ever publish it)
    claim = store.claim(PAYMENT)
    assert isinstance(claim, Acquired)
    succeeded = dataclasses.replace(FIRST_EVENT, routing_key="card.succeeded", message_id="e-1")
    outcome = OutcomeRecord(State.SUCCEEDED, 1, False, result=succeeded)
    store.finish(PAYMENT.payment_id, outcome, None, token=claim.token)
    reconciler = reconciler_for(ScriptedLookup())
    # When a pass runs before the republish delay, nothing is published; after it, the stored
    # result is, byte for byte, once
    clock.advance(5_000)
    assert reconciler.run_once().republished == 0
    clock.advance(5_000)
    assert reconciler.run_once().republished == 1
    assert [StoredResult.of(m) for m in published] == [succeeded]
    clock.advance(60_000)
    assert reconciler.run_once().republished == 0


@pytest.mark.parametrize("retrying", [False, True], ids=["processing", "retrying"])
def test_a_claim_no_delivery_carries_any_more_goes_in_doubt_and_is_settled_by_the_provider(
    store: Claims,
    views: PaymentViews,
    clock: FixedClock,
    published: list[OutboundMessage],
    reconciler_for: Callable[..., Reconciler],
    retrying: bool,
):
    # Given a claimed payment whose delivery the broker dead-lettered (its delivery limit),
    # while its worker was dead (processing) or while it waited for a retry (retrying)
    claim = store.claim(PAYMENT)
    assert isinstance(claim, Acquired)
    if retrying:
        store.retry_later(
            PAYMENT.payment_id, token=claim.token, attempts=1, outcome_unknown=True, attempt=None
        )
    lookup = ScriptedLookup(ProviderReceipt("sandbox", "ch_7"))
    sweeps = Sweeps(republish_after_s=10.0, abandoned_after_s=120.0)
    reconciler = reconciler_for(lookup, sweeps=sweeps)
    clock.advance(60_000)
    assert reconciler.run_once().abandoned == 0
    # When nobody has touched it for the abandonment delay
    clock.advance(60_000)
    done = reconciler.run_once()
    # Then it is put in doubt with a result event, and the provider is asked at once: the
    # charge it finds makes the payment succeeded, with its own event
    assert (done.abandoned, done.checked, done.resolved) == (1, 1, 1)
    assert [m.routing_key for m in published] == ["card.in_doubt", "card.succeeded"]
    in_doubt = PaymentResult.model_validate_json(published[0].body)
    assert in_doubt.code == "claim_abandoned"
    row = views.get(PAYMENT.payment_id)
    assert row is not None
    assert (row["state"], row["provider_reference"]) == ("succeeded", "ch_7")
    assert lookup.asked == [("card", PAYMENT.payment_id)]


def test_a_claim_untouched_through_an_outage_is_not_taken_for_abandoned(
    store: Claims,
    checks: Checks,
    clock: FixedClock,
    published: list[OutboundMessage],
    signer: Callable[[str], Signer],
):
    # Given a claim left untouched for longer than the abandonment delay, because the store
    # (or the broker) was down meanwhile and came back a moment ago
    claim = store.claim(PAYMENT)
    assert isinstance(claim, Acquired)
    clock.advance(300_000)
    back_at_ms = clock.now_ms() - 1_000
    reconciler = Reconciler(
        checks,
        ScriptedLookup(ProviderReceipt("sandbox", "ch_7")),
        signer=signer("worker-1"),
        topology=Topology(prefix="t"),
        publish=published.append,
        clock=clock,
        schedule_s=SCHEDULE_S,
        sweeps=Sweeps(republish_after_s=10.0, abandoned_after_s=120.0),
        quiet_since_ms=lambda: back_at_ms,
    )
    # Then it is left to its delivery for the abandonment delay after the outage
    assert reconciler.run_once().abandoned == 0
    clock.advance(100_000)
    assert reconciler.run_once().abandoned == 0
    # and only then, still untouched, put in doubt
    clock.advance(21_000)
    assert reconciler.run_once().abandoned == 1

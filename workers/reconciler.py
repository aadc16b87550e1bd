"""The reconciler: settles pending and in-doubt payments by asking the provider what happened.

A payment enters `pending` (the provider accepted it, settles later) or `in_doubt` (it may have
acted; retries could not tell) with a first check scheduled. Each check looks the payment up by
our reference at the provider the store says it was sent to:

    found, settled      -> succeeded (a result event is stored, then published)
    found, not settled  -> pending (from in_doubt: a `pending` event), check again later
    found, declined     -> declined (e.g. the payer failed or abandoned 3-D Secure)
    found, no effect    -> failed (e.g. the transaction reverted, or was dropped and replaced)
    found, waiting for the payer past payer_action_timeout_s
                        -> canceled at the provider, then declined (payer_action_expired)
    not found           -> in_doubt: check again on the schedule; after the last check, failed
                           (the provider never heard of it: no money moved)
                           pending: check again (the provider said it accepted it)
    cannot tell         -> check again on the schedule

Checks are claimed in the store, so several reconcilers (every worker runs one) never check one
payment at the same time; each takes only payments sent to providers it has configured.

Each pass also sweeps what no delivery will finish any more (I6, no silent money):

    a stored result the broker has not confirmed for `republish_after_s`
                        -> published again from the store, byte for byte (whoever stored it
                           crashed, lost its channel, or had its delivery dead-lettered)
    a claim nobody has touched for `abandoned_after_s` (its delivery was dead-lettered or lost)
                        -> in_doubt (code claim_abandoned) with its result event, and checked
                           at once like any in-doubt payment
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from common.clock import Clock, from_ms
from common.envelope import OutboundMessage
from common.errors import NoEffectAtProvider, OutcomeUnknown, PaymentDeclined, PaymqError
from common.logcontext import log_context
from common.metrics import Metrics
from common.models import PaymentStatus
from common.money import Money
from common.signing import Signer
from common.topology import Topology
from common.tracing import tracer
from store.checks import Checks
from store.records import StoredPayment, StoredResult
from store.states import State
from workers.providers.base import ProviderReceipt
from workers.recording import recorded
from workers.results import Outcome, Subject, result_for

logger = logging.getLogger("paymq.reconciler")

#: How long one check holds a payment against other reconcilers.
CHECK_HOLD_MS = 60_000
ABANDONED = "claim_abandoned"


class Lookup(Protocol):
    def lookup(self, channel: str, reference: str, provider: str | None) -> ProviderReceipt | None:
        """What `provider` (None: any of the channel's) did for our reference; raises
        PaymentDeclined when its record says declined, another PaymqError when it cannot tell."""
        ...

    def cancel(self, channel: str, provider_reference: str, provider: str | None) -> None:
        """Cancel a payment that waits for its payer; raises when the provider would not."""
        ...


@dataclass
class Pass:
    checked: int = 0
    resolved: int = 0
    rescheduled: int = 0
    republished: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class Sweeps:
    """When the reconciler takes over what no delivery will finish."""

    #: A stored result unconfirmed this long is published again.
    republish_after_s: float = 10.0
    #: A claim untouched this long is put in doubt; keep it above the longest retry tier.
    abandoned_after_s: float = 1800.0


class Reconciler:
    def __init__(
        self,
        store: Checks,
        lookup: Lookup,
        *,
        signer: Signer,
        topology: Topology,
        publish: Callable[[OutboundMessage], None],
        clock: Clock,
        schedule_s: tuple[float, ...],
        payer_action_timeout_s: float = 3600.0,
        providers: Collection[str] | None = None,
        metrics: Metrics | None = None,
        sweeps: Sweeps | None = None,
        quiet_since_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self._store = store
        self._lookup = lookup
        self._signer = signer
        self._topology = topology
        self._publish = publish
        self._clock = clock
        self._schedule_ms = tuple(int(s * 1000) for s in schedule_s)
        self._payer_action_timeout_ms = int(payer_action_timeout_s * 1000)
        #: The providers this reconciler can ask (None: every one).
        self._providers = providers
        self._metrics = metrics or Metrics()
        sweeps = sweeps or Sweeps()
        self._republish_after_ms = int(sweeps.republish_after_s * 1000)
        self._abandoned_after_ms = int(sweeps.abandoned_after_s * 1000)
        #: Since when the store and the broker have answered this reconciler without a break.
        self._quiet_since_ms = quiet_since_ms

    def run_once(self, limit: int = 200) -> Pass:
        done = Pass()
        self._sweep_unpublished(done, limit)
        self._sweep_abandoned(done, limit)
        for payment_id in self._store.due_for_check(limit, self._providers):
            checked = self._take_and_check(payment_id)
            if checked is None:
                continue  # another reconciler took it
            done.checked += 1
            if checked:
                done.resolved += 1
            else:
                done.rescheduled += 1
        return done

    def _sweep_unpublished(self, done: Pass, limit: int) -> None:
        for payment_id, result in self._store.unpublished_results(self._republish_after_ms, limit):
            with log_context(payment_id=payment_id):
                logger.info("payment %s: publishing its unconfirmed result again", payment_id)
                if self._publish_stored(payment_id, result):
                    done.republished += 1
        if done.republished:
            self._metrics.results_republished.inc(done.republished)
            logger.warning(
                "%d stored results had no confirmed publish for %d s: published again",
                done.republished,
                self._republish_after_ms // 1000,
            )

    def _sweep_abandoned(self, done: Pass, limit: int) -> None:
        # A claim untouched through a store or broker outage was not abandoned: its delivery
        # could not reach it. Idleness counts only once both have answered for that long.
        if self._clock.now_ms() - self._quiet_since_ms() < self._abandoned_after_ms:
            return
        for row in self._store.abandoned_claims(self._abandoned_after_ms, limit):
            with log_context(payment_id=row.payment_id, message_id=row.request_message_id):
                if self._abandon(row):
                    done.abandoned += 1

    def _take_and_check(self, payment_id: str) -> bool | None:
        """None if another reconciler holds the check; else whether the payment settled."""
        row = self._store.take_check(payment_id, CHECK_HOLD_MS)
        if row is None:
            return None
        with (
            log_context(payment_id=payment_id, message_id=row.request_message_id),
            tracer.start_as_current_span(f"reconcile {row.channel}") as span,
        ):
            span.set_attribute("paymq.payment_id", payment_id)
            settled = self._check(row)
        self._metrics.reconciler_checks.labels("settled" if settled else "later").inc()
        return settled

    def _check(self, row: StoredPayment) -> bool:  # noqa: PLR0911 - the docstring's table, in order
        """True when the payment changed state."""
        payment_id, state = row.payment_id, row.state
        try:
            receipt = self._lookup.lookup(row.channel, payment_id, row.provider)
        except PaymentDeclined as exc:
            # The provider's record says no money moved: e.g. the payer failed 3-D Secure.
            self._settle(row, PaymentStatus.DECLINED, None, exc)
            return True
        except NoEffectAtProvider as exc:
            # E.g. the payout's transaction reverted, or another took its nonce.
            self._settle(row, PaymentStatus.FAILED, None, exc)
            return True
        except PaymqError as exc:
            logger.warning("payment %s: provider lookup failed (%s); later", payment_id, exc)
            self._reschedule(row)
            return False
        if receipt is not None and receipt.settled:
            self._settle(row, PaymentStatus.SUCCEEDED, receipt, None)
            return True
        if receipt is not None:
            if state is State.IN_DOUBT:
                self._settle(row, PaymentStatus.PENDING, receipt, None)
                return True
            if receipt.action is not None and self._payer_gave_up(row):
                return self._cancel(row, receipt)
            self._reschedule(row)
            return False
        if state is State.IN_DOUBT and row.checks >= len(self._schedule_ms):
            error = NoEffectAtProvider(
                f"the provider has no record of the payment after {row.checks} checks"
            )
            self._settle(row, PaymentStatus.FAILED, None, error)
            return True
        self._reschedule(row)
        return False

    def _payer_gave_up(self, row: StoredPayment) -> bool:
        waited_ms = self._clock.now_ms() - row.payment_created_ms
        return waited_ms >= self._payer_action_timeout_ms

    def _cancel(self, row: StoredPayment, receipt: ProviderReceipt) -> bool:
        """The payer never authenticated: cancel at the provider, then the payment is declined.
        If the provider refuses (the payer has just completed it), the next check says so."""
        try:
            self._lookup.cancel(row.channel, receipt.reference, row.provider)
        except PaymqError as exc:
            logger.warning("payment %s: not canceled (%s); later", row.payment_id, exc)
            self._reschedule(row)
            return False
        error = PaymentDeclined(
            "the payer did not authenticate the payment in time; canceled at the provider",
            code="payer_action_expired",
            provider=receipt.provider,
            provider_reference=receipt.reference,
        )
        self._settle(row, PaymentStatus.DECLINED, None, error)
        return True

    def _settle(
        self,
        row: StoredPayment,
        status: PaymentStatus,
        receipt: ProviderReceipt | None,
        error: PaymqError | None,
    ) -> None:
        now_ms = self._clock.now_ms()
        outcome = Outcome(status, row.attempts, receipt=receipt, error=error)
        pending = status is PaymentStatus.PENDING
        done = recorded(
            result_for(row.channel, _subject(row), outcome, now_ms),
            signer=self._signer,
            topology=self._topology,
            outcome_unknown=row.outcome_unknown,
            next_check_ms=self._next_check_ms(0, now_ms) if pending else None,
            provider=row.provider,
            provider_reference=row.provider_reference,
        )
        self._store.finish(row.payment_id, done.record)
        logger.log(
            outcome.log_level, "payment %s reconciled: %s -> %s", row.payment_id, row.state, status
        )
        self._metrics.payment(row.channel, status.value)
        self._publish_stored(row.payment_id, done.stored)

    def _abandon(self, row: StoredPayment) -> bool:
        """No delivery carries this claimed payment any more: in doubt, with a result event now,
        and the provider asked at once (the check is due immediately)."""
        now_ms = self._clock.now_ms()
        idle_s = (now_ms - row.updated_ms) // 1000
        error = OutcomeUnknown(
            f"claimed, then untouched for {idle_s} s ({row.state}): no delivery carries it "
            "any more (dead-lettered or lost); the provider is asked what happened",
            code=ABANDONED,
        )
        outcome = Outcome(PaymentStatus.IN_DOUBT, row.attempts, error=error)
        done = recorded(
            result_for(row.channel, _subject(row), outcome, now_ms),
            signer=self._signer,
            topology=self._topology,
            outcome_unknown=True,
            next_check_ms=now_ms,
        )
        moved = self._store.settle_abandoned(row, done.record)
        if not moved:
            return False  # a delivery came back to it meanwhile
        self._metrics.abandoned_claims.inc()
        logger.warning("payment %s: %s -> in_doubt (%s)", row.payment_id, row.state, ABANDONED)
        self._metrics.payment(row.channel, PaymentStatus.IN_DOUBT.value)
        self._publish_stored(row.payment_id, done.stored)
        return True

    def _publish_stored(self, payment_id: str, result: StoredResult) -> bool:
        """Publish a stored result; once confirmed, the store no longer counts it unpublished
        (until then the next pass tries again)."""
        try:
            self._publish(result.message())
        except PaymqError as exc:
            logger.warning("payment %s: result not confirmed (%s); next pass", payment_id, exc)
            return False
        self._store.mark_published([(payment_id, result.message_id)])
        return True

    def _reschedule(self, row: StoredPayment) -> None:
        now_ms = self._clock.now_ms()
        self._store.reschedule(row.payment_id, self._next_check_ms(row.checks, now_ms))

    def _next_check_ms(self, checks_made: int, now_ms: int) -> int:
        delays = self._schedule_ms
        return now_ms + delays[min(checks_made, len(delays) - 1)]


def _subject(row: StoredPayment) -> Subject:
    return Subject(
        event_key=row.payment_id,
        request_message_id=row.request_message_id,
        payment_id=uuid.UUID(row.payment_id),
        idempotency_key=row.idempotency_key,
        merchant_reference=row.merchant_reference,
        amount=Money(amount_minor=row.amount_minor, currency=row.currency),
        payment_created_at=from_ms(row.payment_created_ms),
    )

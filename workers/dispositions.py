"""What a handled delivery comes to: the messages to publish before the ack, built from an
outcome. The handler (handler.py) decides; this records the outcome with its signed result in
the store and says what goes out: the result event, a dead-letter copy, a retry-tier copy, or
nothing when another worker owns the payment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.clock import Clock
from common.deadletters import dead_letter_copy
from common.envelope import InboundMessage, OutboundMessage
from common.errors import ClaimLost, MessageRejected, PaymqError, StoreUnavailable
from common.metrics import Metrics
from common.models import PaymentRequest, PaymentStatus
from common.redact import mask_pans
from common.signing import Signer
from store.claims import Claims
from store.records import Acquired, Attempt, StoredResult
from store.states import State
from workers.config import HandlerConfig
from workers.crashpoints import NEVER, CrashPoints
from workers.recording import recorded
from workers.results import Outcome, build_result, sign_result
from workers.retries import retry_copy, tier_for

logger = logging.getLogger("paymq.worker")


@dataclass(frozen=True)
class Disposition:
    #: Everything to publish, confirmed, before the delivery is acked.
    publish: tuple[OutboundMessage, ...]
    #: None when the payment went to a retry tier or is in another worker's hands.
    status: PaymentStatus | None
    summary: str
    #: For the log lines written when it is settled; None when the message named no payment.
    payment_id: str | None = None
    #: (payment id, result message id) when `publish` carries the payment's stored result:
    #: once the broker confirms it, the store is told, and its sweeper leaves it alone.
    stored_result: tuple[str, str] | None = None
    #: The level its summary is logged at once settled: WARNING for what an operator should
    #: look at (a refusal, a dead-letter copy, a payment failed or in doubt, a provider's error
    #: that sends it to a retry tier), INFO for the rest.
    level: int = logging.INFO


class Dispositions:
    def __init__(
        self,
        config: HandlerConfig,
        *,
        signer: Signer,
        clock: Clock,
        store: Claims,
        crash: CrashPoints = NEVER,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._signer = signer
        self._clock = clock
        self._store = store
        self._crash = crash
        self._metrics = metrics or Metrics()
        self._outcome_timer = self._metrics.store_write.labels(config.channel, "outcome")

    def record(
        self,
        message: InboundMessage,
        request: PaymentRequest,
        outcome: Outcome,
        claim: Acquired,
        attempt: Attempt | None = None,
        *,
        unknown: bool | None = None,
        dead_letter: bool = False,
    ) -> Disposition:
        """Store the outcome with its signed result event, then publish that event (and a
        dead-letter copy of the request for refused, expired and poison payments)."""
        now_ms = self._clock.now_ms()
        result = build_result(
            channel=self._config.channel,
            message=message,
            request=request,
            outcome=outcome,
            now_ms=now_ms,
        )
        needs_check = outcome.status in (PaymentStatus.PENDING, PaymentStatus.IN_DOUBT)
        done = recorded(
            result,
            signer=self._signer,
            topology=self._config.topology,
            outcome_unknown=claim.outcome_unknown if unknown is None else unknown,
            next_check_ms=now_ms + self._config.first_check_ms if needs_check else None,
        )
        event, state, error = done.event, done.state, outcome.error
        try:
            with self._outcome_timer.time():
                self._store.finish(str(request.payment_id), done.record, attempt, token=claim.token)
        except ClaimLost:
            return self.lost(message, request)
        except StoreUnavailable as exc:
            return self.store_down(message, request, exc)
        self._crash.reached("after_store_commit", request.merchant_reference)
        publish = [event]
        self._metrics.payment(self._config.channel, outcome.status.value)
        # Refused and expired messages are kept for an operator; in-doubt ones are the
        # reconciler's, which the store tells about.
        if error is not None and (dead_letter or state in (State.REJECTED, State.EXPIRED)):
            publish.append(self._dead_letter(message, error, now_ms))
        payment_id = str(request.payment_id)
        return Disposition(
            tuple(publish),
            outcome.status,
            _summary(request, outcome),
            payment_id=payment_id,
            stored_result=(payment_id, event.message_id),
            level=outcome.log_level,  # WARNING for each outcome that is dead-lettered too
        )

    def _dead_letter(
        self, message: InboundMessage, error: PaymqError, now_ms: int
    ) -> OutboundMessage:
        self._metrics.dead_lettered.labels(self._config.channel, error.code).inc()
        return dead_letter_copy(message, self._config.topology, error, now_ms)

    def unstored(
        self, message: InboundMessage, request: PaymentRequest | None, error: MessageRejected
    ) -> Disposition:
        """Refused before any claim: a result and a dead-letter copy, nothing stored (the
        payment id, if any, may belong to someone else's payment)."""
        now_ms = self._clock.now_ms()
        outcome = Outcome(PaymentStatus.REJECTED, 0, error=error)
        result = build_result(
            channel=self._config.channel,
            message=message,
            request=request,
            outcome=outcome,
            now_ms=now_ms,
            per_message=True,
        )
        topology = self._config.topology
        publish = (
            sign_result(result, self._signer, topology),
            self._dead_letter(message, error, now_ms),
        )
        self._metrics.payment(self._config.channel, PaymentStatus.REJECTED.value)
        payment_id = str(request.payment_id) if request else None
        who = f"payment {payment_id}" if request else f"message {message.message_id}"
        return Disposition(
            publish,
            PaymentStatus.REJECTED,
            f"{who} rejected ({error.code})",
            payment_id,
            level=logging.WARNING,
        )

    def repeat(
        self, request: PaymentRequest, state: State, result: StoredResult, why: str = "already"
    ) -> Disposition:
        """Already has a result: publish the stored event again, byte for byte (I5)."""
        status = PaymentStatus(state.value)
        payment_id = str(request.payment_id)
        summary = f"payment {payment_id} {why} {state}: result repeated"
        return Disposition(
            (result.message(),),
            status,
            summary,
            payment_id,
            stored_result=(payment_id, result.message_id),
        )

    def later(
        self, message: InboundMessage, request: PaymentRequest | None, until_ms: int, why: str
    ) -> Disposition:
        """Back through a retry tier, untouched, to look again once `until_ms` has passed."""
        wait_ms = max(0, until_ms - self._clock.now_ms())
        delay_ms = tier_for(wait_ms, self._config.retry.delays_ms)
        retry = retry_copy(message, self._config.topology, self._config.channel, delay_ms)
        payment_id = str(request.payment_id) if request is not None else None
        who = f"payment {payment_id}" if payment_id else f"message {message.message_id}"
        summary = f"{who} {why}; looking again in {delay_ms} ms"
        return Disposition((retry,), None, summary, payment_id)

    def refresh(
        self, message: InboundMessage, request: PaymentRequest, deliveries: int
    ) -> Disposition:
        """Delivered `deliveries` times without being settled (its connections died under it):
        the same bytes go back to the work queue as a new message, whose count starts again.
        Poison is not hidden by this: a request that kills its worker after the claim is
        counted by the claim's takeovers, one that kills it before this check by the broker."""
        copy = message.resend(self._config.topology.requests_exchange, self._config.channel, {})
        self._metrics.requests_refreshed.labels(self._config.channel).inc()
        summary = (
            f"payment {request.payment_id} delivered {deliveries} times: sent back as a fresh copy"
        )
        return Disposition((copy,), None, summary, str(request.payment_id))

    def store_down(
        self, message: InboundMessage, request: PaymentRequest, error: StoreUnavailable
    ) -> Disposition:
        """No store, no claim: the message waits in the first retry tier, untouched. If the
        provider was called meanwhile, the next attempt uses the same idempotency key."""
        # The store's health logs the stall once (store/health.py), not per payment.
        logger.debug("payment %s: %s; trying again later", request.payment_id, error)
        until_ms = self._clock.now_ms() + self._config.retry.delays_ms[0]
        return self.later(message, request, until_ms, "waits for the payment store")

    def store_trouble(
        self, message: InboundMessage, request: PaymentRequest, error: ClaimLost | StoreUnavailable
    ) -> Disposition:
        if isinstance(error, ClaimLost):
            return self.lost(message, request)
        return self.store_down(message, request, error)

    def lost(self, message: InboundMessage, request: PaymentRequest) -> Disposition:
        """Our claim is no longer the payment's current one: it ran out and another delivery
        took the payment over. That this other delivery will publish the result is not
        assumed: a result already stored is published again now; otherwise this message
        looks again after the first retry tier (and finds the result, or the claim free)."""
        payment_id = str(request.payment_id)
        try:
            stored = self._store.stored_result(payment_id)
        except StoreUnavailable as exc:
            return self.store_down(message, request, exc)
        if stored is not None:
            state, result = stored
            return self.repeat(request, state, result, why="claim lost; already")
        until_ms = self._clock.now_ms() + self._config.retry.delays_ms[0]
        return self.later(message, request, until_ms, "claim lost to another delivery")


def _summary(request: PaymentRequest, outcome: Outcome) -> str:
    error = outcome.error
    detail = f" ({error.code}: {mask_pans(error.reason)})" if error else ""
    return f"payment {request.payment_id} {outcome.status}{detail}"

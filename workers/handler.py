"""The decision core of a worker: one message in, the messages to publish before the ack out.

No pika and no sockets here: the provider sits behind the channel, time behind the clock, and
the payment store behind its class. Order (I3: nothing without authority is executed):

    size, content type -> signature, key, route -> strict JSON, payload      (checks.py)
    -> claim in the store: repeat a stored result, wait for another worker, or go on
    -> expiry -> Retry-After wait -> execute -> record the outcome and its result, atomically

Every path ends in a `Disposition` (dispositions.py records outcomes and builds them). The
shell publishes all of its messages with confirms and only then acks the delivery, so a crash
anywhere means a redelivery, never a loss; and since the result is stored before it is
published, a redelivery repeats it byte for byte.
"""

from __future__ import annotations

import hashlib
import logging

from opentelemetry.trace import SpanKind

from common.clock import Clock
from common.envelope import HEADER_CREATED_AT_MS, InboundMessage, VerifiedMessage
from common.errors import (
    CircuitOpen,
    ClaimLost,
    MessageExpired,
    MessageRejected,
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    PermanentError,
    RetryableError,
    StoreUnavailable,
)
from common.keyring import KeyringSource
from common.logcontext import bind_payment, log_context
from common.metrics import Metrics
from common.models import PaymentRequest, PaymentStatus
from common.redact import mask_pans
from common.signing import Signer
from common.tracing import extract, tracer
from store.claims import Claims
from store.records import Acquired, AlreadyDone, Busy, Conflict, NewPayment, Rejection
from workers.channels.base import ExecutionContext, PaymentChannel
from workers.checks import Checker
from workers.config import HandlerConfig
from workers.crashpoints import NEVER, CrashPoints
from workers.dispositions import Disposition, Dispositions
from workers.identity import attempt_record, provider_idempotency_key, request_fingerprint
from workers.providers.route import Binding
from workers.results import Outcome
from workers.retries import GiveUp, RetryState, decide, read_state, retry_copy, state_headers

logger = logging.getLogger("paymq.worker")

__all__ = ["Disposition", "Handler", "HandlerConfig", "delivery_count", "refresh_after"]

#: RabbitMQ's count of earlier deliveries of a quorum queue's message (absent on the first).
DELIVERY_COUNT_HEADER = "x-delivery-count"


def delivery_count(message: InboundMessage) -> int:
    count = message.headers.get(DELIVERY_COUNT_HEADER)
    return count if isinstance(count, int) and count > 0 else 0


#: A request delivered this often goes back as a fresh copy before it is handled.
REFRESH_AFTER_DELIVERIES = 3


def refresh_after(delivery_limit: int) -> int:
    """Deliveries after which a request goes back as a fresh copy: early (a request returned
    three times is rare outside a flapping link or a crashing fleet), and never past the
    queue's own limit, so lost connections cannot add up between two chances."""
    return max(1, min(REFRESH_AFTER_DELIVERIES, delivery_limit))


class Handler:
    def __init__(
        self,
        config: HandlerConfig,
        channel: PaymentChannel,
        *,
        keyring: KeyringSource,
        signer: Signer,
        clock: Clock,
        store: Claims,
        crash: CrashPoints = NEVER,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._channel = channel
        self._keyring = keyring
        self._signer = signer
        self._clock = clock
        self._store = store
        self._crash = crash
        self._metrics = metrics or Metrics()
        self._out = Dispositions(
            config, signer=signer, clock=clock, store=store, crash=crash, metrics=self._metrics
        )
        self._checker = Checker(
            channel=config.channel,
            keyring=keyring,
            max_body_bytes=config.max_body_bytes,
            max_clock_skew_ms=config.max_clock_skew_ms,
        )

    def handle(self, message: InboundMessage) -> Disposition:
        with (
            log_context(message_id=message.message_id),
            tracer.start_as_current_span(
                f"process {self._config.channel}",
                context=extract(message.headers),
                kind=SpanKind.CONSUMER,
            ) as span,
        ):
            self._observe_lag(message)
            disposition = self._handle(message)
            span.set_attributes(
                {
                    "messaging.system": "rabbitmq",
                    "messaging.message.id": message.message_id or "",
                    "paymq.payment_id": disposition.payment_id or "",
                    "paymq.status": disposition.status.value if disposition.status else "",
                }
            )
            return disposition

    def _observe_lag(self, message: InboundMessage) -> None:
        """How long a request waited for a worker, on its first pass only: a message back
        from a retry tier (it carries x-death) waited there on purpose."""
        created_at_ms = message.headers.get(HEADER_CREATED_AT_MS)
        if "x-death" in message.headers or not isinstance(created_at_ms, int):
            return
        lag_s = max(0, self._clock.now_ms() - created_at_ms) / 1000
        self._metrics.queue_lag.labels(self._config.channel).observe(lag_s)

    def _handle(self, message: InboundMessage) -> Disposition:
        try:
            checked = self._checker.check(message, self._clock.now_ms())
        except MessageRejected as exc:
            return self._refuse(message, None, exc)
        except Exception:
            # A bug in checking, never in executing: nothing was sent to the provider, so the
            # message is refused and kept in the dead-letter queue for a replay after the fix.
            logger.exception("unexpected error checking message %s", message.message_id)
            error = MessageRejected(
                "internal error while checking the message", code="internal_error"
            )
            return self._refuse(message, None, error)
        deliveries = delivery_count(message)
        refresh_at = self._config.refresh_after_deliveries
        if refresh_at and deliveries >= refresh_at:
            bind_payment(str(checked[1].payment_id))
            return self._out.refresh(message, checked[1], deliveries)
        return self._claim(message, *checked)

    def _claim(
        self, message: InboundMessage, verified: VerifiedMessage, request: PaymentRequest
    ) -> Disposition:
        bind_payment(str(request.payment_id))
        try:
            claim = self._store.claim(self._new_payment(message, verified, request))
        except StoreUnavailable as exc:
            return self._out.store_down(message, request, exc)
        if isinstance(claim, AlreadyDone):
            return self._out.repeat(request, claim.state, claim.result)
        if isinstance(claim, Busy):
            return self._out.later(
                message, request, self._look_again_ms(claim), "being handled by another worker"
            )
        if isinstance(claim, Conflict):
            error = MessageRejected(
                f"idempotency key already used by payment {claim.existing_payment_id} with "
                "another request",
                code="idempotency_conflict",
            )
            return self._refuse(message, request, error)
        return self._with_claim(message, verified, request, claim)

    def _refuse(
        self, message: InboundMessage, request: PaymentRequest | None, error: MessageRejected
    ) -> Disposition:
        """Refused before any claim. The refusal is noted in the store first, so whoever
        published the request can learn of it there (the HTTP API for its submissions); with
        the store down the message waits in a retry tier, as a payment would."""
        if message.message_id:
            rejection = Rejection(
                request_message_id=message.message_id,
                body_sha256=hashlib.sha256(message.body).hexdigest(),
                payment_id=str(request.payment_id) if request is not None else None,
                code=error.code,
                reason=mask_pans(error.reason),
            )
            try:
                self._store.note_rejection(rejection)
            except StoreUnavailable:
                until_ms = self._clock.now_ms() + self._config.retry.delays_ms[0]
                return self._out.later(message, request, until_ms, "waits for the payment store")
        return self._out.unstored(message, request, error)

    def _look_again_ms(self, busy: Busy) -> int:
        """When a delivery that found the claim held looks again. A live holder finishes
        within a provider call: soon (the first tier), so a duplicate's result lags by seconds,
        not by the lease. The longer the claim has been held, the likelier its holder died:
        the waits grow with its age, so a dead holder's lease costs a handful of looks, not
        one per tier."""
        now_ms = self._clock.now_ms()
        wait_ms = max(self._config.retry.delays_ms[0], busy.held_ms)
        return min(busy.until_ms, now_ms + wait_ms)

    # --- with the claim held -------------------------------------------------------------------

    def _with_claim(
        self,
        message: InboundMessage,
        verified: VerifiedMessage,
        request: PaymentRequest,
        claim: Acquired,
    ) -> Disposition:
        if claim.takeovers >= self._config.poison_after_takeovers:
            return self._poisoned(message, request, claim)
        now_ms = self._clock.now_ms()
        expires_at_ms = verified.fields.expires_at_ms
        if now_ms >= expires_at_ms:
            unknown = claim.outcome_unknown
            error = MessageExpired(
                f"expired {now_ms - expires_at_ms} ms before execution"
                + (" after an attempt with an unknown outcome" if unknown else "")
            )
            status = PaymentStatus.IN_DOUBT if unknown else PaymentStatus.EXPIRED
            return self._out.record(
                message, request, Outcome(status, claim.attempts, error=error), claim
            )
        retry_state = read_state(message, self._keyring.current(), self._config.channel)
        if retry_state.not_before_ms > now_ms:
            return self._wait(
                message, request, claim, retry_state.not_before_ms, "waits for Retry-After"
            )
        return self._execute(message, verified, request, claim)

    def _wait(
        self,
        message: InboundMessage,
        request: PaymentRequest,
        claim: Acquired,
        until_ms: int,
        why: str,
    ) -> Disposition:
        """Release the claim and look again once `until_ms` has passed: no attempt made."""
        try:
            self._store.retry_later(
                str(request.payment_id),
                token=claim.token,
                attempts=claim.attempts,
                outcome_unknown=claim.outcome_unknown,
                attempt=None,
            )
        except (ClaimLost, StoreUnavailable) as exc:
            return self._out.store_trouble(message, request, exc)
        return self._out.later(message, request, until_ms, why)

    def _poisoned(
        self, message: InboundMessage, request: PaymentRequest, claim: Acquired
    ) -> Disposition:
        """Every worker that took this payment died holding it. Executing it again would kill
        the next one; it may have reached the provider before, so it is in doubt: a result
        event now, the reconciler asks the provider, an operator finds it dead-lettered."""
        error = OutcomeUnknown(
            f"the workers holding this payment died {claim.takeovers} times; not executed again",
            code="poison_message",
        )
        outcome = Outcome(PaymentStatus.IN_DOUBT, claim.attempts, error=error)
        return self._out.record(message, request, outcome, claim, unknown=True, dead_letter=True)

    def _execute(  # noqa: PLR0911 - one return per kind of answer, as in the taxonomy
        self,
        message: InboundMessage,
        verified: VerifiedMessage,
        request: PaymentRequest,
        claim: Acquired,
    ) -> Disposition:
        attempts = claim.attempts + 1
        payment_id = str(request.payment_id)
        context = ExecutionContext(
            idempotency_key=provider_idempotency_key(verified.key.owner, request.idempotency_key),
            signed_prefix=verified.fields.prefix(),
            binding=Binding(
                payment_id=payment_id,
                provider=claim.provider,
                pinned=claim.outcome_unknown,
                bind=lambda provider, reason: self._store.bind_provider(
                    payment_id, claim.token, provider, reason
                ),
            ),
        )
        try:
            receipt = self._channel.execute(request, context)
        except (ClaimLost, StoreUnavailable) as exc:
            # Recording another provider before sending to it failed: nothing was sent there.
            return self._out.store_trouble(message, request, exc)
        except CircuitOpen as exc:
            return self._circuit_open(message, request, claim, exc)
        except MessageRejected as exc:  # e.g. sealed card data that does not open
            outcome = Outcome(PaymentStatus.REJECTED, claim.attempts, error=exc)
            return self._out.record(message, request, outcome, claim)
        except PaymentDeclined as exc:
            self._crash.reached("after_provider_call", request.merchant_reference)
            outcome = Outcome(PaymentStatus.DECLINED, attempts, error=exc)
            return self._out.record(message, request, outcome, claim, attempt_record(attempts, exc))
        except PermanentError as exc:
            self._crash.reached("after_provider_call", request.merchant_reference)
            outcome = Outcome(PaymentStatus.FAILED, attempts, error=exc)
            return self._out.record(message, request, outcome, claim, attempt_record(attempts, exc))
        except (RetryableError, OutcomeUnknown) as exc:
            self._crash.reached("after_provider_call", request.merchant_reference)
            return self._after_transient(message, request, exc, attempts, claim)
        except Exception as exc:
            # A bug, not a provider answer. The call may have gone out: treat as unknown.
            logger.exception("unexpected error executing payment %s", request.payment_id)
            unknown = OutcomeUnknown(f"internal error: {type(exc).__name__}", code="internal_error")
            return self._after_transient(message, request, unknown, attempts, claim)
        self._crash.reached("after_provider_call", request.merchant_reference)
        status = PaymentStatus.SUCCEEDED if receipt.settled else PaymentStatus.PENDING
        outcome = Outcome(status, attempts, receipt=receipt)
        return self._out.record(
            message, request, outcome, claim, attempt_record(attempts, None, receipt)
        )

    def _circuit_open(
        self, message: InboundMessage, request: PaymentRequest, claim: Acquired, error: CircuitOpen
    ) -> Disposition:
        """Nothing was sent anywhere, so this was no attempt: the payment waits until a circuit
        may let it through, however long the provider is down, until it expires."""
        wait_ms = max(int(error.retry_after_s * 1000), self._config.retry.delays_ms[0])
        return self._wait(message, request, claim, self._clock.now_ms() + wait_ms, error.reason)

    def _after_transient(
        self,
        message: InboundMessage,
        request: PaymentRequest,
        error: PaymqError,
        attempts: int,
        claim: Acquired,
    ) -> Disposition:
        earlier_unknown = claim.outcome_unknown
        unknown = earlier_unknown or isinstance(error, OutcomeUnknown)
        attempt = attempt_record(attempts, error)
        decision = decide(error, attempts, self._config.retry, earlier_unknown=earlier_unknown)
        if isinstance(decision, GiveUp):
            status = PaymentStatus.IN_DOUBT if decision.in_doubt else PaymentStatus.FAILED
            outcome = Outcome(status, attempts, error=error)
            return self._out.record(message, request, outcome, claim, attempt, unknown=unknown)
        waits_longer = decision.wait_ms > decision.delay_ms
        state = RetryState(
            attempts=attempts,
            outcome_unknown=unknown,
            not_before_ms=self._clock.now_ms() + decision.wait_ms if waits_longer else 0,
        )
        try:
            self._store.retry_later(
                str(request.payment_id),
                token=claim.token,
                attempts=attempts,
                outcome_unknown=unknown,
                attempt=attempt,
            )
        except (ClaimLost, StoreUnavailable) as exc:
            return self._out.store_trouble(message, request, exc)
        self._crash.reached("after_store_commit", request.merchant_reference)
        retry = retry_copy(
            message,
            self._config.topology,
            self._config.channel,
            decision.delay_ms,
            state_headers(message, state, self._signer),
        )
        summary = (
            f"payment {request.payment_id} attempt {attempts} {error.code}; "
            f"retry in {decision.wait_ms} ms"
        )
        self._metrics.retries.labels(self._config.channel, error.code).inc()
        return Disposition(
            publish=(retry,), status=None, summary=summary, payment_id=str(request.payment_id)
        )

    def _new_payment(
        self, message: InboundMessage, verified: VerifiedMessage, request: PaymentRequest
    ) -> NewPayment:
        return NewPayment(
            payment_id=str(request.payment_id),
            scope=verified.key.owner,
            idempotency_key=request.idempotency_key,
            request_hash=request_fingerprint(request),
            request_message_id=message.message_id or "",
            channel=self._config.channel,
            merchant_reference=request.merchant_reference,
            amount_minor=request.amount.amount_minor,
            currency=request.amount.currency,
            payment_created_ms=verified.fields.created_at_ms,
            provider=self._channel.primary_provider,
        )

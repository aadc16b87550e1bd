"""The decision core of a worker: one message in, the messages to publish before the ack out.

No pika and no sockets here: the provider sits behind the channel, time behind the clock, and
the payment store behind its class. Order (I3: nothing without authority is executed):

    size, content type -> signature, key, route -> strict JSON, payload      (checks.py)
    -> claim in the store: repeat a stored result, wait for another worker, or go on
    -> expiry -> Retry-After wait -> execute -> record the outcome and its result, atomically

Every path ends in a `Disposition`. The shell publishes all of its messages with confirms and
only then acks the delivery, so a crash anywhere means a redelivery, never a loss; and since the
result is stored before it is published, a redelivery repeats it byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.clock import Clock
from common.envelope import InboundMessage, OutboundMessage, VerifiedMessage
from common.errors import (
    MessageExpired,
    MessageRejected,
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    PermanentError,
    RetryableError,
    StoreUnavailable,
)
from common.keyring import Keyring
from common.models import PaymentRequest, PaymentStatus
from common.redact import mask_pans
from common.signing import Signer
from common.topology import Topology
from workers.channels.base import ExecutionContext, PaymentChannel
from workers.checks import Checker, dead_letter_copy
from workers.crashpoints import NEVER, CrashPoints
from workers.identity import attempt_record, provider_idempotency_key, request_fingerprint
from workers.results import Outcome, build_result, sign_result
from workers.retry import GiveUp, RetryPolicy, decide, tier_for
from workers.retrystate import RetryState, read_state, state_headers
from workers.store.payments import (
    Acquired,
    AlreadyDone,
    Attempt,
    Busy,
    ClaimLost,
    Conflict,
    NewPayment,
    PaymentStore,
    StoredResult,
)
from workers.store.payments import Outcome as StoreOutcome
from workers.store.states import State

logger = logging.getLogger("paymq.worker")


@dataclass(frozen=True)
class HandlerConfig:
    channel: str
    topology: Topology
    retry: RetryPolicy
    max_body_bytes: int
    max_clock_skew_ms: int
    #: Delay before the reconciler first looks at a pending or in-doubt payment.
    first_check_ms: int = 60_000
    #: A payment whose claim was taken over this often is poison: not executed again.
    poison_after_takeovers: int = 5


@dataclass(frozen=True)
class Disposition:
    #: Everything to publish, confirmed, before the delivery is acked.
    publish: tuple[OutboundMessage, ...]
    #: None when the payment went to a retry tier or is in another worker's hands.
    status: PaymentStatus | None
    summary: str


_STATE_OF = {status: State(status.value) for status in PaymentStatus}


class Handler:
    def __init__(
        self,
        config: HandlerConfig,
        channel: PaymentChannel,
        *,
        keyring: Keyring,
        signer: Signer,
        clock: Clock,
        store: PaymentStore,
        crash: CrashPoints = NEVER,
    ) -> None:
        self._config = config
        self._channel = channel
        self._keyring = keyring
        self._signer = signer
        self._clock = clock
        self._store = store
        self._crash = crash
        self._checker = Checker(
            channel=config.channel,
            keyring=keyring,
            max_body_bytes=config.max_body_bytes,
            max_clock_skew_ms=config.max_clock_skew_ms,
        )

    def handle(self, message: InboundMessage) -> Disposition:
        try:
            checked = self._checker.check(message, self._clock.now_ms())
        except MessageRejected as exc:
            return self._unstored(message, None, exc)
        except Exception:
            # A bug in checking, never in executing: nothing was sent to the provider, so the
            # message is refused and kept in the dead-letter queue for a replay after the fix.
            logger.exception("unexpected error checking message %s", message.message_id)
            error = MessageRejected(
                "internal error while checking the message", code="internal_error"
            )
            return self._unstored(message, None, error)
        return self._claim(message, *checked)

    def _claim(
        self, message: InboundMessage, verified: VerifiedMessage, request: PaymentRequest
    ) -> Disposition:
        try:
            claim = self._store.claim(self._new_payment(message, verified, request))
        except StoreUnavailable as exc:
            return self._store_down(message, request, exc)
        if isinstance(claim, AlreadyDone):
            return self._repeat(request, claim.state, claim.result)
        if isinstance(claim, Busy):
            return self._later(message, request, claim.until_ms, "being handled by another worker")
        if isinstance(claim, Conflict):
            error = MessageRejected(
                f"idempotency key already used by payment {claim.existing_payment_id} with "
                "another request",
                code="idempotency_conflict",
            )
            return self._unstored(message, request, error)
        return self._with_claim(message, verified, request, claim)

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
            return self._record(
                message, request, Outcome(status, claim.attempts, error=error), claim
            )
        retry_state = read_state(message, self._keyring, self._config.channel)
        if retry_state.not_before_ms > now_ms:
            self._store.retry_later(
                str(request.payment_id),
                attempts=claim.attempts,
                outcome_unknown=claim.outcome_unknown,
                attempt=None,
            )
            return self._later(message, request, retry_state.not_before_ms, "waits for Retry-After")
        return self._execute(message, verified, request, claim)

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
        return self._record(message, request, outcome, claim, unknown=True, dead_letter=True)

    def _execute(
        self,
        message: InboundMessage,
        verified: VerifiedMessage,
        request: PaymentRequest,
        claim: Acquired,
    ) -> Disposition:
        attempts = claim.attempts + 1
        context = ExecutionContext(
            idempotency_key=provider_idempotency_key(verified.key.owner, request.idempotency_key),
            signed_prefix=verified.fields.prefix(),
        )
        try:
            receipt = self._channel.execute(request, context)
        except MessageRejected as exc:  # e.g. sealed card data that does not open
            outcome = Outcome(PaymentStatus.REJECTED, claim.attempts, error=exc)
            return self._record(message, request, outcome, claim)
        except PaymentDeclined as exc:
            self._crash.reached("after_provider_call", request.merchant_reference)
            outcome = Outcome(PaymentStatus.DECLINED, attempts, error=exc)
            return self._record(message, request, outcome, claim, attempt_record(attempts, exc))
        except PermanentError as exc:
            self._crash.reached("after_provider_call", request.merchant_reference)
            outcome = Outcome(PaymentStatus.FAILED, attempts, error=exc)
            return self._record(message, request, outcome, claim, attempt_record(attempts, exc))
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
        return self._record(
            message, request, outcome, claim, attempt_record(attempts, None, receipt)
        )

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
            return self._record(message, request, outcome, claim, attempt, unknown=unknown)
        waits_longer = decision.wait_ms > decision.delay_ms
        state = RetryState(
            attempts=attempts,
            outcome_unknown=unknown,
            not_before_ms=self._clock.now_ms() + decision.wait_ms if waits_longer else 0,
        )
        try:
            self._store.retry_later(
                str(request.payment_id), attempts=attempts, outcome_unknown=unknown, attempt=attempt
            )
        except ClaimLost:
            return self._lost(request)
        except StoreUnavailable as exc:
            return self._store_down(message, request, exc)
        self._crash.reached("after_store_commit", request.merchant_reference)
        retry = message.resend(
            self._config.topology.retry_exchange(decision.delay_ms),
            self._config.channel,
            state_headers(message, state, self._signer),
        )
        summary = (
            f"payment {request.payment_id} attempt {attempts} {error.code}; "
            f"retry in {decision.wait_ms} ms"
        )
        return Disposition(publish=(retry,), status=None, summary=summary)

    def _record(
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
        event = sign_result(result, self._signer, self._config.topology)
        receipt, error = outcome.receipt, outcome.error
        state = _STATE_OF[outcome.status]
        needs_check = state in (State.PENDING, State.IN_DOUBT)
        try:
            self._store.finish(
                str(request.payment_id),
                StoreOutcome(
                    state=state,
                    attempts=outcome.attempts,
                    outcome_unknown=claim.outcome_unknown if unknown is None else unknown,
                    reason=result.reason,
                    code=result.code,
                    provider=receipt.provider if receipt else None,
                    provider_reference=receipt.reference if receipt else None,
                    result=StoredResult.of(event),
                    next_check_ms=now_ms + self._config.first_check_ms if needs_check else None,
                ),
                attempt,
            )
        except ClaimLost:
            return self._lost(request)
        except StoreUnavailable as exc:
            return self._store_down(message, request, exc)
        self._crash.reached("after_store_commit", request.merchant_reference)
        publish = [event]
        # Refused and expired messages are kept for an operator; in-doubt ones are the
        # reconciler's, which the store tells about.
        if error is not None and (dead_letter or state in (State.REJECTED, State.EXPIRED)):
            publish.append(dead_letter_copy(message, self._config.topology, error, now_ms))
        return Disposition(tuple(publish), outcome.status, _summary(request, outcome))

    # --- without the claim -----------------------------------------------------------------

    def _unstored(
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
        )
        topology = self._config.topology
        publish = (
            sign_result(result, self._signer, topology),
            dead_letter_copy(message, topology, error, now_ms),
        )
        who = f"payment {request.payment_id}" if request else f"message {message.message_id}"
        return Disposition(publish, PaymentStatus.REJECTED, f"{who} rejected ({error.code})")

    def _repeat(self, request: PaymentRequest, state: State, result: StoredResult) -> Disposition:
        """Already has a result: publish the stored event again, byte for byte (I5)."""
        status = PaymentStatus(state.value)
        summary = f"payment {request.payment_id} already {state}: result repeated"
        return Disposition((result.message(),), status, summary)

    def _later(
        self, message: InboundMessage, request: PaymentRequest, until_ms: int, why: str
    ) -> Disposition:
        """Back through a retry tier, untouched, to look again once `until_ms` has passed."""
        wait_ms = max(0, until_ms - self._clock.now_ms())
        delay_ms = tier_for(wait_ms, self._config.retry.delays_ms)
        retry = message.resend(
            self._config.topology.retry_exchange(delay_ms), self._config.channel, {}
        )
        summary = f"payment {request.payment_id} {why}; looking again in {delay_ms} ms"
        return Disposition((retry,), None, summary)

    def _store_down(
        self, message: InboundMessage, request: PaymentRequest, error: StoreUnavailable
    ) -> Disposition:
        """No store, no claim: the message waits in the first retry tier, untouched. If the
        provider was called meanwhile, the next attempt uses the same idempotency key."""
        logger.warning("payment %s: %s; trying again later", request.payment_id, error)
        until_ms = self._clock.now_ms() + self._config.retry.delays_ms[0]
        return self._later(message, request, until_ms, "waits for the payment store")

    def _lost(self, request: PaymentRequest) -> Disposition:
        """Our claim ran out and another worker took the payment over: its delivery will
        publish the result; this one is done."""
        summary = f"payment {request.payment_id}: claim lost to another worker; nothing to do"
        return Disposition((), None, summary)

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
        )


def _summary(request: PaymentRequest, outcome: Outcome) -> str:
    error = outcome.error
    detail = f" ({error.code}: {mask_pans(error.reason)})" if error else ""
    return f"payment {request.payment_id} {outcome.status}{detail}"

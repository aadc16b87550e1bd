"""A payment whose claim this worker holds: expiry, a Retry-After still running, poison, then
the provider call and what its answer comes to. The handler (handler.py) checks the message and
takes the claim; everything here happens while the claim is held, and every path ends in a
`Disposition` that releases it (a recorded outcome, or a wait through a retry tier).
"""

from __future__ import annotations

import logging

from common.clock import Clock
from common.envelope import InboundMessage, VerifiedMessage
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
from common.metrics import Metrics
from common.models import PaymentRequest, PaymentStatus
from common.signing import Signer
from store.claims import Claims
from store.records import Acquired
from workers.channels.base import ExecutionContext, PaymentChannel
from workers.config import HandlerConfig
from workers.crashpoints import NEVER, CrashPoints
from workers.dispositions import Disposition, Dispositions
from workers.identity import attempt_record, provider_idempotency_key
from workers.providers.route import Binding
from workers.results import Outcome
from workers.retries import GiveUp, RetryState, decide, read_state, retry_copy, state_headers

logger = logging.getLogger("paymq.worker")


class ClaimHeld:
    def __init__(
        self,
        config: HandlerConfig,
        channel: PaymentChannel,
        *,
        keyring: KeyringSource,
        signer: Signer,
        clock: Clock,
        store: Claims,
        out: Dispositions,
        crash: CrashPoints = NEVER,
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._channel = channel
        self._keyring = keyring
        self._signer = signer
        self._clock = clock
        self._store = store
        self._out = out
        self._crash = crash
        self._metrics = metrics or Metrics()

    def run(
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
            publish=(retry,),
            status=None,
            summary=summary,
            payment_id=str(request.payment_id),
            level=logging.WARNING,  # the provider's error, though the payment goes on
        )

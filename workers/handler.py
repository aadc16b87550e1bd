"""The decision core of a worker: one message in, the messages to publish before the ack out.

No pika and no sockets here: the provider sits behind the channel, time behind the clock.
Order of checks (I3: nothing without authority is executed):

    size, content type -> signature, key, route -> expiry -> strict JSON, payload -> execute

Every path ends in a `Disposition`. The shell publishes all of its messages with confirms and
only then acks the delivery, so a crash anywhere means a redelivery, never a loss.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from common.clock import Clock, to_ms
from common.envelope import (
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTERED_AT_MS,
    InboundMessage,
    OutboundMessage,
    VerifiedMessage,
    open_message,
)
from common.errors import (
    MalformedMessage,
    MessageExpired,
    MessageRejected,
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    PermanentError,
    RetryableError,
)
from common.keyring import Keyring, KeyRole
from common.models import PaymentRequest, PaymentStatus
from common.redact import mask_pans
from common.signing import REQUEST_TYPE, Signer
from common.strictjson import check_strict_json
from common.topology import Topology
from workers.channels.base import ExecutionContext, PaymentChannel
from workers.results import Outcome, build_result, sign_result
from workers.retry import GiveUp, RetryPolicy, decide, tier_for
from workers.retrystate import RetryState, read_state, state_headers

logger = logging.getLogger("paymq.worker")


_DEAD_LETTERED = (PaymentStatus.REJECTED, PaymentStatus.EXPIRED, PaymentStatus.IN_DOUBT)


@dataclass(frozen=True)
class HandlerConfig:
    channel: str
    topology: Topology
    retry: RetryPolicy
    max_body_bytes: int
    max_clock_skew_ms: int


@dataclass(frozen=True)
class Disposition:
    #: Everything to publish, confirmed, before the delivery is acked.
    publish: tuple[OutboundMessage, ...]
    #: None when the payment was sent to a retry tier.
    status: PaymentStatus | None
    summary: str


def provider_idempotency_key(owner: str, idempotency_key: str) -> str:
    """Derived from the payment, never fresh per attempt: every retry and redelivery of one
    payment asks the provider with the same key. Scoped by the producer that signed it."""
    digest = hashlib.sha256(f"{owner}\n{idempotency_key}".encode()).hexdigest()
    return f"paymq_{digest[:48]}"


def _validation_reason(exc: ValidationError) -> str:
    # Never echo input values: a misplaced card number must not reach a result or a log.
    errors = exc.errors(include_input=False, include_url=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:5]]
    return "invalid payment request: " + "; ".join(parts)


class Handler:
    def __init__(
        self,
        config: HandlerConfig,
        channel: PaymentChannel,
        *,
        keyring: Keyring,
        signer: Signer,
        clock: Clock,
    ) -> None:
        self._config = config
        self._channel = channel
        self._keyring = keyring
        self._signer = signer
        self._clock = clock

    def handle(self, message: InboundMessage) -> Disposition:
        try:
            checked = self._check(message)
        except Exception:
            # A bug in checking, never in executing: nothing was sent to the provider, so the
            # message is refused and kept in the dead-letter queue for a replay after the fix.
            logger.exception("unexpected error checking message %s", message.message_id)
            error = MessageRejected(
                "internal error while checking the message", code="internal_error"
            )
            return self._terminal(message, None, Outcome(PaymentStatus.REJECTED, 0, error=error))
        if isinstance(checked, Disposition):
            return checked
        verified, request, state = checked
        if state.not_before_ms > self._clock.now_ms():
            return self._wait(message, request, state)
        return self._execute(message, verified, request, state)

    def _check(
        self, message: InboundMessage
    ) -> Disposition | tuple[VerifiedMessage, PaymentRequest, RetryState]:
        """Everything before the provider: a Disposition for a message that stops here."""
        cfg = self._config
        state = read_state(message, self._keyring, cfg.channel)
        try:
            verified = open_message(
                message,
                self._keyring,
                expected_type=REQUEST_TYPE,
                role=KeyRole.PRODUCER,
                channel=cfg.channel,
                route=cfg.channel,
                max_body_bytes=cfg.max_body_bytes,
            )
        except MessageRejected as exc:
            return self._terminal(message, None, Outcome(PaymentStatus.REJECTED, 0, error=exc))
        now_ms = self._clock.now_ms()
        if now_ms >= verified.fields.expires_at_ms:
            parsed = self._parse_quietly(verified)
            unknown = state.outcome_unknown
            status = PaymentStatus.IN_DOUBT if unknown else PaymentStatus.EXPIRED
            error = MessageExpired(
                f"expired {now_ms - verified.fields.expires_at_ms} ms before execution"
                + (" after an attempt with an unknown outcome" if unknown else "")
            )
            outcome = Outcome(status, state.attempts, error=error)
            return self._terminal(message, parsed, outcome)
        try:
            request = self._parse(verified, now_ms)
        except MessageRejected as exc:
            return self._terminal(message, None, Outcome(PaymentStatus.REJECTED, 0, error=exc))
        return verified, request, state

    # --- steps --------------------------------------------------------------------------------

    def _parse(self, verified: VerifiedMessage, now_ms: int) -> PaymentRequest:
        check_strict_json(verified.body)
        try:
            request = PaymentRequest.model_validate_json(verified.body)
        except ValidationError as exc:
            raise MalformedMessage(_validation_reason(exc)) from None
        fields = verified.fields
        if request.channel != fields.route:
            raise MalformedMessage(f"details are {request.channel!r}, signed for {fields.route!r}")
        if (to_ms(request.created_at), to_ms(request.expires_at)) != (
            fields.created_at_ms,
            fields.expires_at_ms,
        ):
            raise MalformedMessage("body timestamps differ from the signed header")
        if fields.created_at_ms > now_ms + self._config.max_clock_skew_ms:
            raise MalformedMessage("created in the future beyond the allowed clock skew")
        return request

    def _parse_quietly(self, verified: VerifiedMessage) -> PaymentRequest | None:
        """Best effort, to name the payment in its `expired` result."""
        try:
            return self._parse(verified, now_ms=verified.fields.created_at_ms)
        except MessageRejected:
            return None

    def _execute(
        self,
        message: InboundMessage,
        verified: VerifiedMessage,
        request: PaymentRequest,
        state: RetryState,
    ) -> Disposition:
        attempts_before = state.attempts
        attempts = attempts_before + 1
        context = ExecutionContext(
            idempotency_key=provider_idempotency_key(verified.key.owner, request.idempotency_key),
            signed_prefix=verified.fields.prefix(),
        )
        try:
            receipt = self._channel.execute(request, context)
        except MessageRejected as exc:  # e.g. sealed card data that does not open
            return self._terminal(
                message, request, Outcome(PaymentStatus.REJECTED, attempts_before, error=exc)
            )
        except PaymentDeclined as exc:
            return self._terminal(
                message, request, Outcome(PaymentStatus.DECLINED, attempts, error=exc)
            )
        except PermanentError as exc:
            return self._terminal(
                message, request, Outcome(PaymentStatus.FAILED, attempts, error=exc)
            )
        except (RetryableError, OutcomeUnknown) as exc:
            return self._after_transient(message, request, exc, attempts, state)
        except Exception as exc:
            # A bug, not a provider answer. The call may have gone out: treat as unknown.
            logger.exception("unexpected error executing payment %s", request.payment_id)
            unknown = OutcomeUnknown(f"internal error: {type(exc).__name__}", code="internal_error")
            return self._after_transient(message, request, unknown, attempts, state)
        status = PaymentStatus.SUCCEEDED if receipt.settled else PaymentStatus.PENDING
        return self._terminal(message, request, Outcome(status, attempts, receipt=receipt))

    def _after_transient(
        self,
        message: InboundMessage,
        request: PaymentRequest,
        error: PaymqError,
        attempts: int,
        state: RetryState,
    ) -> Disposition:
        earlier_unknown = state.outcome_unknown
        decision = decide(error, attempts, self._config.retry, earlier_unknown=earlier_unknown)
        if isinstance(decision, GiveUp):
            status = PaymentStatus.IN_DOUBT if decision.in_doubt else PaymentStatus.FAILED
            return self._terminal(message, request, Outcome(status, attempts, error=error))
        waits_longer = decision.wait_ms > decision.delay_ms
        new_state = RetryState(
            attempts=attempts,
            outcome_unknown=earlier_unknown or isinstance(error, OutcomeUnknown),
            not_before_ms=self._clock.now_ms() + decision.wait_ms if waits_longer else 0,
        )
        retry = message.resend(
            self._config.topology.retry_exchange(decision.delay_ms),
            self._config.channel,
            state_headers(message, new_state, self._signer),
        )
        summary = (
            f"payment {request.payment_id} attempt {attempts} {error.code}; "
            f"retry in {decision.wait_ms} ms"
        )
        return Disposition(publish=(retry,), status=None, summary=summary)

    def _wait(
        self, message: InboundMessage, request: PaymentRequest, state: RetryState
    ) -> Disposition:
        """Back through a retry tier, untouched, until the provider's Retry-After has passed."""
        remaining_ms = state.not_before_ms - self._clock.now_ms()
        delay_ms = tier_for(remaining_ms, self._config.retry.delays_ms)
        retry = message.resend(
            self._config.topology.retry_exchange(delay_ms), self._config.channel, {}
        )
        summary = f"payment {request.payment_id} waits {remaining_ms} ms more (Retry-After)"
        return Disposition(publish=(retry,), status=None, summary=summary)

    def _terminal(
        self, message: InboundMessage, request: PaymentRequest | None, outcome: Outcome
    ) -> Disposition:
        now_ms = self._clock.now_ms()
        result = build_result(
            channel=self._config.channel,
            message=message,
            request=request,
            outcome=outcome,
            now_ms=now_ms,
        )
        publish = [sign_result(result, self._signer, self._config.topology)]
        error = outcome.error
        # Refused, expired and in-doubt messages are kept, with their reason, for an operator.
        if error is not None and outcome.status in _DEAD_LETTERED:
            publish.append(
                message.resend(
                    self._config.topology.dead_letter_exchange,
                    message.routing_key,
                    {
                        HEADER_DEAD_LETTER_CODE: error.code,
                        HEADER_DEAD_LETTER_REASON: mask_pans(error.reason)[:500],
                        HEADER_DEAD_LETTERED_AT_MS: now_ms,
                    },
                )
            )
        who = f"payment {request.payment_id}" if request else f"message {message.message_id}"
        detail = f" ({error.code}: {mask_pans(error.reason)})" if error else ""
        return Disposition(
            publish=tuple(publish), status=outcome.status, summary=f"{who} {outcome.status}{detail}"
        )

"""The decision core of a worker: one message in, the messages to publish before the ack out.

No pika and no sockets here: the provider sits behind the channel, time behind the clock, and
the payment store behind its class. Order (I3: nothing without authority is executed):

    size, content type -> signature, key, route -> strict JSON, payload      (checks.py)
    -> claim in the store: repeat a stored result, wait for another worker, or go on
    -> expiry -> Retry-After wait -> execute -> record the outcome and its result, atomically
                                                                         (execution.py)

Every path ends in a `Disposition` (dispositions.py records outcomes and builds them). The
shell publishes all of its messages with confirms and only then acks the delivery, so a crash
anywhere means a redelivery, never a loss; and since the result is stored before it is
published, a redelivery repeats it byte for byte.
"""

from __future__ import annotations

import logging

from opentelemetry.trace import SpanKind

from common.clock import Clock
from common.envelope import HEADER_CREATED_AT_MS, InboundMessage, VerifiedMessage
from common.errors import (
    MessageRejected,
    StoreUnavailable,
)
from common.keyring import KeyringSource
from common.logcontext import bind_payment, log_context
from common.metrics import Metrics
from common.models import PaymentRequest
from common.signing import Signer
from common.tracing import extract, tracer
from store.claims import Claims
from store.records import AlreadyDone, Busy, Conflict, NewPayment
from workers.channels.base import PaymentChannel
from workers.checks import Checker
from workers.config import HandlerConfig
from workers.crashpoints import NEVER, CrashPoints
from workers.dispositions import Disposition, Dispositions
from workers.execution import ClaimHeld
from workers.identity import new_payment
from workers.refusals import Refusals

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
        self._clock = clock
        self._store = store
        self._metrics = metrics or Metrics()
        self._claim_timer = self._metrics.store_write.labels(config.channel, "claim")
        self._out = Dispositions(
            config, signer=signer, clock=clock, store=store, crash=crash, metrics=self._metrics
        )
        self._claim_held = ClaimHeld(
            config,
            channel,
            keyring=keyring,
            signer=signer,
            clock=clock,
            store=store,
            out=self._out,
            crash=crash,
            metrics=self._metrics,
        )
        self._refusals = Refusals(
            config, store=store, out=self._out, clock=clock, look_again_ms=self._look_again_ms
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
        new = self._new_payment(message, verified, request)
        try:
            with self._claim_timer.time():
                claim = self._store.claim(new)
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
        return self._claim_held.run(message, verified, request, claim)

    def _refuse(
        self, message: InboundMessage, request: PaymentRequest | None, error: MessageRejected
    ) -> Disposition:
        """Refused before any claim: noted, or the HTTP API's payment settled (refusals.py)."""
        return self._refusals.refuse(message, request, error)

    def _look_again_ms(self, busy: Busy) -> int:
        """When a delivery that found the claim held looks again. A live holder finishes
        within a provider call: soon (the first tier), so a duplicate's result lags by seconds,
        not by the lease. The longer the claim has been held, the likelier its holder died:
        the waits grow with its age, so a dead holder's lease costs a handful of looks, not
        one per tier."""
        now_ms = self._clock.now_ms()
        wait_ms = max(self._config.retry.delays_ms[0], busy.held_ms)
        return min(busy.until_ms, now_ms + wait_ms)

    def _new_payment(
        self, message: InboundMessage, verified: VerifiedMessage, request: PaymentRequest
    ) -> NewPayment:
        return new_payment(
            request,
            scope=verified.key.owner,
            request_message_id=message.message_id or "",
            channel=self._config.channel,
            created_ms=verified.fields.created_at_ms,
            provider=self._channel.primary_provider,
        )

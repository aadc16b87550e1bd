"""Result events: built from what the handler learned, signed by the worker's key."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from common.clock import from_ms, to_ms
from common.envelope import InboundMessage, OutboundMessage, sign_message
from common.errors import PaymentDeclined, PaymqError
from common.models import PaymentRequest, PaymentResult, PaymentStatus, result_event_id
from common.money import Money
from common.redact import mask_pans
from common.signing import RESULT_TYPE, SignedFields, Signer
from common.topology import Topology
from common.tracing import traced
from workers.providers.base import ProviderReceipt

#: Outcomes an operator should look at: refused, expired, failed, or with the money's fate
#: unknown. A decline is the payer's bank answering, and pending a payment on its way.
_NOTABLE = frozenset(
    {PaymentStatus.REJECTED, PaymentStatus.EXPIRED, PaymentStatus.FAILED, PaymentStatus.IN_DOUBT}
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one payment, in the handler's words."""

    status: PaymentStatus
    attempts: int
    receipt: ProviderReceipt | None = None
    error: PaymqError | None = None

    @property
    def log_level(self) -> int:
        """WARNING for an outcome an operator should look at, INFO for the others."""
        return logging.WARNING if self.status in _NOTABLE else logging.INFO


@dataclass(frozen=True)
class Subject:
    """Whom a result is about: a trusted payment, or only an untrusted message."""

    #: What the event id is derived from: the payment id, or the exact untrusted message.
    event_key: str
    request_message_id: str | None
    payment_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    merchant_reference: str | None = None
    amount: Money | None = None
    payment_created_at: datetime | None = None

    @classmethod
    def of(
        cls, message: InboundMessage, request: PaymentRequest | None, *, per_message: bool = False
    ) -> Subject:
        """`per_message`: the event is about this message, not the payment (a refusal before
        the claim, e.g. an idempotency conflict): two different messages refused for one
        payment id get two events, never one id for two bodies."""
        digest = hashlib.sha256(message.body).hexdigest()
        by_message = f"message:{message.message_id}:{digest}"
        if request is None:
            # Untrusted bytes: bind the id to the exact message, so a forged copy of a real
            # message id can never collide with that payment's events.
            return cls(by_message, message.message_id)
        return cls(
            event_key=by_message if per_message else str(request.payment_id),
            request_message_id=message.message_id,
            payment_id=request.payment_id,
            idempotency_key=request.idempotency_key,
            merchant_reference=request.merchant_reference,
            amount=request.amount,
            payment_created_at=request.created_at,
        )


REQUIRES_ACTION = "requires_action"


def result_for(channel: str, subject: Subject, outcome: Outcome, now_ms: int) -> PaymentResult:
    receipt, error = outcome.receipt, outcome.error
    action = receipt.action if receipt is not None and not receipt.settled else None
    declined = error if isinstance(error, PaymentDeclined) else None
    code, reason = (
        (error.code, mask_pans(error.reason)[:500])
        if error is not None
        else (REQUIRES_ACTION, "waiting for the payer to authenticate the payment")
        if action is not None
        else (None, None)
    )
    return PaymentResult(
        event_id=result_event_id(subject.event_key, outcome.status),
        payment_id=subject.payment_id,
        request_message_id=subject.request_message_id,
        idempotency_key=subject.idempotency_key,
        merchant_reference=subject.merchant_reference,
        channel=channel,
        status=outcome.status,
        amount=subject.amount,
        provider=receipt.provider if receipt else declined.provider if declined else None,
        provider_reference=(
            receipt.reference if receipt else declined.provider_reference if declined else None
        ),
        code=code,
        reason=reason,
        card_last4=receipt.card_last4 if receipt else None,
        action=action,
        attempts=outcome.attempts,
        payment_created_at=subject.payment_created_at,
        occurred_at=from_ms(now_ms),
    )


def build_result(
    *,
    channel: str,
    message: InboundMessage,
    request: PaymentRequest | None,
    outcome: Outcome,
    now_ms: int,
    per_message: bool = False,
) -> PaymentResult:
    subject = Subject.of(message, request, per_message=per_message)
    return result_for(channel, subject, outcome, now_ms)


def sign_result(result: PaymentResult, signer: Signer, topology: Topology) -> OutboundMessage:
    routing_key = topology.result_routing_key(result.channel, result.status.value)
    fields = SignedFields(
        message_type=RESULT_TYPE,
        key_id=signer.key_id,
        route=routing_key,
        message_id=str(result.event_id),
        created_at_ms=to_ms(result.occurred_at),
        expires_at_ms=0,
    )
    body = result.model_dump_json().encode()
    # The current span (the worker's or reconciler's) goes along, outside the signature; the
    # event is stored with it, so a repeat is the same message, headers included.
    return traced(
        sign_message(
            signer, fields, body, exchange=topology.results_exchange, routing_key=routing_key
        )
    )

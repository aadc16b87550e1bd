"""Result events: built from what the handler learned, signed by the worker's key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common.clock import from_ms, to_ms
from common.envelope import InboundMessage, OutboundMessage, sign_message
from common.errors import PaymqError
from common.models import PaymentRequest, PaymentResult, PaymentStatus, result_event_id
from common.redact import mask_pans
from common.signing import RESULT_TYPE, SignedFields, Signer
from common.topology import Topology
from workers.providers.base import ProviderReceipt


@dataclass(frozen=True)
class Outcome:
    """What happened to one payment, in the handler's words."""

    status: PaymentStatus
    attempts: int
    receipt: ProviderReceipt | None = None
    error: PaymqError | None = None


def build_result(
    *,
    channel: str,
    message: InboundMessage,
    request: PaymentRequest | None,
    outcome: Outcome,
    now_ms: int,
) -> PaymentResult:
    if request is not None:
        subject = str(request.payment_id)
    else:
        # Untrusted bytes: bind the id to the exact message, so a forged copy of a real
        # message id can never collide with that payment's events.
        subject = f"message:{message.message_id}:{hashlib.sha256(message.body).hexdigest()}"
    receipt, error = outcome.receipt, outcome.error
    return PaymentResult(
        event_id=result_event_id(subject, outcome.status),
        payment_id=request.payment_id if request else None,
        request_message_id=message.message_id,
        idempotency_key=request.idempotency_key if request else None,
        merchant_reference=request.merchant_reference if request else None,
        channel=channel,
        status=outcome.status,
        amount=request.amount if request else None,
        provider=receipt.provider if receipt else None,
        provider_reference=receipt.reference if receipt else None,
        code=error.code if error else None,
        reason=mask_pans(error.reason)[:500] if error else None,
        card_last4=receipt.card_last4 if receipt else None,
        attempts=outcome.attempts,
        payment_created_at=request.created_at if request else None,
        occurred_at=from_ms(now_ms),
    )


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
    return sign_message(
        signer, fields, body, exchange=topology.results_exchange, routing_key=routing_key
    )

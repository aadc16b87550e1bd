"""What identifies a payment: to the provider, to the store, and in its attempt records. Pure."""

from __future__ import annotations

import hashlib
import json

from common.details import CardDetails, CardToken
from common.errors import OutcomeUnknown, PaymentDeclined, PaymqError, RetryableError
from common.models import PaymentRequest
from store.records import Attempt, NewPayment
from workers.providers.base import ProviderReceipt


def provider_idempotency_key(owner: str, idempotency_key: str) -> str:
    """Derived from the payment, never fresh per attempt: every retry and redelivery of one
    payment asks the provider with the same key. Scoped by the producer that signed it."""
    digest = hashlib.sha256(f"{owner}\n{idempotency_key}".encode()).hexdigest()
    return f"paymq_{digest[:48]}"


def request_fingerprint(request: PaymentRequest) -> str:
    """What the payment asks for, independent of when it was signed and how its card data was
    sealed: the same idempotency key with another fingerprint is a conflict."""
    details = request.details
    if isinstance(details, CardDetails) and not isinstance(details.source, CardToken):
        described: object = {"type": "card", "source": "sealed"}
    else:
        described = details.model_dump(mode="json")
    canonical = {
        "payment_id": str(request.payment_id),
        "merchant_reference": request.merchant_reference,
        "amount": request.amount.model_dump(mode="json"),
        "details": described,
        "metadata": request.metadata,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def new_payment(
    request: PaymentRequest,
    *,
    scope: str,
    request_message_id: str,
    channel: str,
    created_ms: int,
    provider: str | None = None,
) -> NewPayment:
    """What the store is told of a payment it is to take: the request's identity, its
    fingerprint, and whose scope its idempotency key is in."""
    return NewPayment(
        payment_id=str(request.payment_id),
        scope=scope,
        idempotency_key=request.idempotency_key,
        request_hash=request_fingerprint(request),
        request_message_id=request_message_id,
        channel=channel,
        merchant_reference=request.merchant_reference,
        amount_minor=request.amount.amount_minor,
        currency=request.amount.currency,
        payment_created_ms=created_ms,
        provider=provider,
    )


def attempt_record(
    number: int, error: PaymqError | None, receipt: ProviderReceipt | None = None
) -> Attempt:
    if error is None:
        outcome = "succeeded" if receipt is None or receipt.settled else "pending"
        return Attempt(number, outcome, provider_reference=receipt.reference if receipt else None)
    kind = (
        "declined"
        if isinstance(error, PaymentDeclined)
        else "unknown"
        if isinstance(error, OutcomeUnknown)
        else "retryable"
        if isinstance(error, RetryableError)
        else "refused"
    )
    return Attempt(number, kind, code=error.code)

"""The contract: a payment request and its result event.

Both are frozen and forbid unknown fields. They are parsed only from bytes whose signature has
been verified and which passed the strict JSON checks (common/strictjson.py).
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from common.details import CardDetails, DigitalCurrencyDetails, PaymentDetails
from common.money import Money, is_fiat

MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
MAX_METADATA_BYTES = 4096

IdempotencyKey = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,255}$")]
MerchantReference = Annotated[str, Field(min_length=1, max_length=128)]


class PaymentRequest(BaseModel):
    """What an upstream system asks paymq to execute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_id: uuid.UUID
    #: Deduplicates the payment end to end; the same key with another payload is a conflict.
    idempotency_key: IdempotencyKey
    merchant_reference: MerchantReference
    amount: Money
    details: PaymentDetails
    created_at: AwareDatetime
    #: After this instant the payment is never executed; it gets an `expired` result.
    expires_at: AwareDatetime
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.details.type

    @field_validator("metadata")
    @classmethod
    def _metadata_within_limits(cls, metadata: dict[str, str]) -> dict[str, str]:
        if len(metadata) > MAX_METADATA_KEYS:
            raise ValueError(f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS}")
        for key, value in metadata.items():
            if not 0 < len(key) <= MAX_METADATA_KEY_CHARS:
                raise ValueError(f"metadata keys must be 1-{MAX_METADATA_KEY_CHARS} characters")
            if len(value) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"metadata value of {key!r} exceeds {MAX_METADATA_VALUE_CHARS}")
        encoded = json.dumps(metadata, ensure_ascii=False).encode()
        if len(encoded) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {len(encoded)} bytes; at most {MAX_METADATA_BYTES}")
        return metadata

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expires_at <= self.created_at:
            raise ValueError("expires_at must be later than created_at")
        details = self.details
        if isinstance(details, CardDetails) and not is_fiat(self.amount.currency):
            raise ValueError(f"card payments need an ISO 4217 currency, not {self.amount.currency}")
        if isinstance(details, DigitalCurrencyDetails) and details.asset != self.amount.currency:
            raise ValueError(
                f"amount currency {self.amount.currency} differs from asset {details.asset}"
            )
        return self


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    #: The provider accepted the payment but settles later.
    PENDING = "pending"
    #: The provider may have acted and we do not know yet; a reconciler resolves it.
    IN_DOUBT = "in_doubt"

    @property
    def terminal(self) -> bool:
        return self not in (PaymentStatus.PENDING, PaymentStatus.IN_DOUBT)


class PaymentResult(BaseModel):
    """What a worker publishes about a payment, signed, to the results exchange.

    For a message that was rejected before its payload could be trusted (forged, malformed),
    only `request_message_id` identifies it and the payment fields are null.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Stable per payment and status, so subscribers can deduplicate redelivered copies.
    event_id: uuid.UUID
    payment_id: uuid.UUID | None
    request_message_id: str | None
    idempotency_key: IdempotencyKey | None
    merchant_reference: MerchantReference | None
    channel: str
    status: PaymentStatus
    amount: Money | None
    provider: str | None = None
    provider_reference: str | None = None
    #: Decline code (from the provider) or error code (ours), e.g. "insufficient_funds".
    code: str | None = None
    #: Human-readable reason, never containing card data or secrets.
    reason: str | None = None
    card_last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")] | None = None
    #: Provider attempts made for this payment (0 when it was never executed).
    attempts: Annotated[int, Field(ge=0)]
    payment_created_at: AwareDatetime | None
    occurred_at: AwareDatetime


RESULT_EVENT_NAMESPACE = uuid.UUID("6f1c1f5e-2b0e-4d5b-9a57-0c1e5a7b9d11")


def result_event_id(subject: str, status: PaymentStatus) -> uuid.UUID:
    """Deterministic event id: the same payment reaching the same status has the same id."""
    return uuid.uuid5(RESULT_EVENT_NAMESPACE, f"{subject}:{status.value}")

"""The contract: a payment request and its result event.

Both are frozen and forbid unknown fields. They are parsed only from bytes whose signature has
been verified and which passed the strict JSON checks (common/strictjson.py).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from common.details import CardDetails, DigitalCurrencyDetails, PaymentDetails
from common.money import Money, is_fiat

MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
MAX_METADATA_BYTES = 4096

IdempotencyKey = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,255}$")]

_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


# Text is parsed here, so the strict validation behind sees UUID and datetime objects.


def _uuid_text(value: object) -> object:
    # One spelling on the wire (RFC 9562 text form), so every parser reads the same id.
    if isinstance(value, str):
        if not _UUID_TEXT.fullmatch(value):
            raise ValueError("must be a UUID in its 8-4-4-4-12 hexadecimal form")
        return uuid.UUID(value)
    return value


def _rfc3339_text(value: object) -> object:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError(
                "must be an RFC 3339 timestamp with a time zone, e.g. 2025-11-24T16:00:00Z"
            )
        return datetime.fromisoformat(value)
    return value


Uuid = Annotated[uuid.UUID, BeforeValidator(_uuid_text)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
#: Strict: JSON types are taken as they are ("12" is not 12), unknown fields are refused.
CONTRACT = ConfigDict(frozen=True, extra="forbid", strict=True)
MerchantReference = Annotated[str, Field(min_length=1, max_length=128)]


class PaymentRequest(BaseModel):
    """What an upstream system asks paymq to execute."""

    model_config = CONTRACT

    payment_id: Uuid
    #: Deduplicates the payment end to end; the same key with another payload is a conflict.
    idempotency_key: IdempotencyKey
    merchant_reference: MerchantReference
    amount: Money
    details: PaymentDetails
    created_at: Timestamp
    #: After this instant the payment is never executed; it gets an `expired` result.
    expires_at: Timestamp
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
        # Counted on the UTF-8 text of keys and values, so every language counts the same.
        size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata holds {size} bytes of text; at most {MAX_METADATA_BYTES}")
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


class PayerAction(BaseModel):
    """What the payer must do before a `pending` payment can go on: authenticate it
    (3-D Secure). The payment's result follows once they have, or have not."""

    model_config = CONTRACT

    #: "redirect": send the payer's browser to `url`. "sdk": finish it in the payer's browser
    #: with the provider's SDK (Stripe.js `handleNextAction`) and `client_secret`.
    type: Literal["redirect", "sdk"]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] | None = None
    #: The provider's handle for the payer's browser; meant for the payer, never logged.
    client_secret: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.type == "redirect" and self.url is None:
            raise ValueError("a redirect action needs its url")
        if self.type == "sdk" and self.client_secret is None:
            raise ValueError("an sdk action needs the client secret")
        return self


class PaymentResult(BaseModel):
    """What a worker publishes about a payment, signed, to the results exchange.

    For a message that was rejected before its payload could be trusted (forged, malformed),
    only `request_message_id` identifies it and the payment fields are null.
    """

    model_config = CONTRACT

    #: Stable per payment and status, so subscribers can deduplicate redelivered copies.
    event_id: Uuid
    payment_id: Uuid | None
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
    #: Set on a `pending` result (code "requires_action") that waits for the payer.
    action: PayerAction | None = None
    #: Provider attempts made for this payment (0 when it was never executed).
    attempts: Annotated[int, Field(ge=0)]
    payment_created_at: Timestamp | None
    occurred_at: Timestamp


RESULT_EVENT_NAMESPACE = uuid.UUID("6f1c1f5e-2b0e-4d5b-9a57-0c1e5a7b9d11")


def result_event_id(subject: str, status: PaymentStatus) -> uuid.UUID:
    """Deterministic event id: the same payment reaching the same status has the same id."""
    return uuid.uuid5(RESULT_EVENT_NAMESPACE, f"{subject}:{status.value}")

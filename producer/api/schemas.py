"""The HTTP API's bodies. Money and payout details are the contract's own models; a card is a
provider token only: card numbers are never accepted over HTTP (docs/api.md says why)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.details import DigitalCurrencyDetails
from common.models import MerchantReference
from common.money import Money

#: What an Idempotency-Key header may hold.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"
#: How many payments one lookup answers (`limit`) unless asked, and at most: each comes with
#: its history.
DEFAULT_LIMIT, MAX_LIMIT = 20, 100


class CardTokenIn(BaseModel):
    """A card the provider already holds: a Stripe PaymentMethod (`pm_...`) or a sandbox
    token (`tok_...`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["card"]
    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,255}$")]


PaymentDetailsIn = Annotated[CardTokenIn | DigitalCurrencyDetails, Field(discriminator="type")]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    merchant_reference: MerchantReference
    amount: Money
    details: PaymentDetailsIn
    metadata: dict[str, str] = Field(default_factory=dict)
    #: After this long the payment is never executed (default PAYMQ_REQUEST_TTL_S).
    expires_in_s: Annotated[int, Field(ge=60, le=7 * 86400)] | None = None

    @property
    def channel(self) -> str:
        return self.details.type


class Accepted(BaseModel):
    payment_id: uuid.UUID
    status: Literal["accepted"] = "accepted"
    #: Where to ask for the payment's state and result.
    status_url: str
    #: True when this answers an earlier request with the same Idempotency-Key and body.
    replayed: bool


#: An instant in RFC 3339, UTC, to the millisecond: 2026-12-03T10:11:12.345Z.
Instant = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
        json_schema_extra={"format": "date-time"},
    ),
]


class Transition(BaseModel):
    at: Instant
    #: `from`, in JSON.
    from_: str = Field(alias="from")
    to: str
    reason: str | None


class ProviderAttempt(BaseModel):
    attempt: int
    at: Instant
    outcome: str
    code: str | None
    provider_reference: str | None


class PaymentView(BaseModel):
    """A payment's state, history and signed result event; card numbers masked. Amounts are
    written as the request body and the result event write them (Money), instants in RFC 3339
    UTC."""

    payment_id: uuid.UUID
    #: `accepted` until a worker has taken the payment, then the store's state; `rejected`
    #: with `code` and `reason` if a worker refused it before taking it.
    state: str
    channel: str
    amount: Money
    merchant_reference: str
    #: The Idempotency-Key it was submitted with.
    idempotency_key: str
    #: The signed request's `created_at`.
    created_at: Instant
    #: The store's last change; null until a worker has taken the payment.
    updated_at: Instant | None = None
    attempts: int = 0
    outcome_unknown: bool = False
    provider: str | None = None
    provider_reference: str | None = None
    code: str | None = None
    #: Why, as the result event says it: a refusal (`state` `rejected`), a decline...
    reason: str | None = None
    next_check: Instant | None = None
    history: list[Transition] = Field(default_factory=list)
    provider_attempts: list[ProviderAttempt] = Field(default_factory=list)
    #: The signed result event's body, as subscribers received it (docs/protocol.md).
    result_event: dict[str, Any] | None = None


class PaymentList(BaseModel):
    """Payments a lookup found, newest first."""

    payments: list[PaymentView]
    #: More matched than `limit` let through.
    has_more: bool


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail

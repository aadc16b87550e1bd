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


class Transition(BaseModel):
    at: str
    #: `from`, in JSON.
    from_: str = Field(alias="from")
    to: str
    reason: str | None


class ProviderAttempt(BaseModel):
    attempt: int
    at: str
    outcome: str
    code: str | None
    provider_reference: str | None


class PaymentView(BaseModel):
    """A payment's state, history and signed result event; card numbers masked."""

    payment_id: uuid.UUID
    #: `accepted` until a worker has taken the payment, then the store's state; `rejected`
    #: with `code` and `reason` if a worker refused it before taking it.
    state: str
    channel: str
    amount_minor: str | None = None
    currency: str | None = None
    merchant_reference: str | None = None
    attempts: int = 0
    outcome_unknown: bool = False
    provider: str | None = None
    provider_reference: str | None = None
    code: str | None = None
    #: Why a worker refused the payment before taking it (`state` `rejected`).
    reason: str | None = None
    next_check: str | None = None
    history: list[Transition] = Field(default_factory=list)
    provider_attempts: list[ProviderAttempt] = Field(default_factory=list)
    #: The signed result event's body, as subscribers received it (docs/protocol.md).
    result_event: dict[str, Any] | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail

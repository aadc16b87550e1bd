"""Payment orders: the human-facing input of `paymq publish` (options or JSON Lines), whose
format docs/publishing.md describes for operators.

One JSON object per line, e.g.

    {"channel": "card", "amount": "10.50", "currency": "USD", "token": "tok_visa",
     "merchant_reference": "order-1001"}
    {"channel": "card", "amount_minor": 2500, "currency": "EUR", "merchant_reference": "o-2",
     "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    {"channel": "digital_currency", "amount": "0.05", "currency": "ETH", "network": "ethereum",
     "destination_address": "0x1111111111111111111111111111111111111111",
     "merchant_reference": "payout-7"}

`amount` is in major units as a decimal string (exactly; more decimals than the currency allows is
an error), `amount_minor` in minor units; give one. The idempotency key defaults to the merchant
reference, so publishing the same file twice cannot pay twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.details import DigitalCurrencyDetails, Network
from common.money import Money
from common.sealing import CardData
from producer.encode import Draft


class PaymentOrder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Literal["card", "digital_currency"]
    amount: str | None = Field(None, pattern=r"^[0-9]+(\.[0-9]+)?$")
    amount_minor: int | None = Field(None, gt=0, strict=True)
    currency: str
    merchant_reference: str = Field(min_length=1, max_length=128)
    idempotency_key: str | None = None
    payment_id: uuid.UUID | None = None
    token: str | None = None
    card: CardData | None = Field(None, repr=False)
    network: Network = "ethereum"
    destination_address: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if (self.amount is None) == (self.amount_minor is None):
            raise ValueError("give exactly one of amount (major units) or amount_minor")
        if self.channel == "card" and (self.token is None) == (self.card is None):
            raise ValueError("a card payment needs exactly one of token or card")
        if self.channel == "digital_currency" and self.destination_address is None:
            raise ValueError("a digital currency payout needs destination_address")
        return self

    def money(self) -> Money:
        if self.amount is not None:
            return Money.from_major(self.amount, self.currency)
        return Money(amount_minor=int(self.amount_minor or 0), currency=self.currency)

    def draft(self) -> Draft:
        """The validated draft; raises ValueError/ValidationError with a readable reason."""
        payout = None
        if self.channel == "digital_currency":
            payout = DigitalCurrencyDetails(
                network=self.network,
                asset=self.currency,
                destination_address=str(self.destination_address),
            )
        return Draft(
            amount=self.money(),
            merchant_reference=self.merchant_reference,
            idempotency_key=self.idempotency_key or self.merchant_reference,
            card_token=self.token if self.channel == "card" else None,
            card=self.card if self.channel == "card" else None,
            payout=payout,
            metadata=self.metadata,
            payment_id=self.payment_id or uuid.uuid4(),
        )


@dataclass(frozen=True)
class OrderLine:
    line_number: int
    draft: Draft | None
    error: str | None


def read_orders(path: Path) -> Iterator[OrderLine]:
    """Every non-blank line as a draft or a reason it cannot be one (never card data)."""
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                order = PaymentOrder.model_validate(json.loads(line))
                yield OrderLine(line_number, order.draft(), None)
            except ValidationError as exc:
                errors = exc.errors(include_input=False, include_url=False)
                reason = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in errors
                )
                yield OrderLine(line_number, None, reason)
            except ValueError as exc:  # JSON syntax, amounts with too much precision
                yield OrderLine(line_number, None, str(exc))

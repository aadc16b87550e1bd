"""What a channel asks of a provider. Providers raise common.errors classes only: a decline is
PaymentDeclined, a clean refusal to talk RetryableError, anything that may have moved money
OutcomeUnknown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from common.models import PayerAction
from common.money import Money
from common.sealing import CardData


@dataclass(frozen=True)
class CardCharge:
    #: Our reference for the payment (its payment id): how the provider finds it again.
    reference: str
    amount: Money
    token: str | None = None
    card: CardData | None = field(default=None, repr=False)
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Payout:
    reference: str
    amount: Money
    network: str
    asset: str
    destination_address: str


@dataclass(frozen=True)
class ProviderReceipt:
    provider: str
    #: The provider's id for the effect (charge id, transaction hash...).
    reference: str
    #: False when the provider accepted the payment but settles it later (pending).
    settled: bool = True
    card_last4: str | None = None
    #: Set when the payment waits for the payer (3-D Secure): `settled` is then False.
    action: PayerAction | None = None


class PaymentLookup(Protocol):
    def lookup(self, channel: str, reference: str) -> ProviderReceipt | None:
        """The provider's record of what it did for `reference` (our payment id), or None when
        it has none. Raises like the calls it looks after when it cannot tell."""
        ...


class CardProvider(PaymentLookup, Protocol):
    name: str

    def accepts(self, charge: CardCharge) -> bool:
        """Can this provider take the charge's source? Card data: every card provider. A token:
        only the provider that issued it."""
        ...

    def charge(self, charge: CardCharge, *, idempotency_key: str) -> ProviderReceipt: ...


class PayoutProvider(PaymentLookup, Protocol):
    name: str

    def payout(self, payout: Payout, *, idempotency_key: str) -> ProviderReceipt: ...

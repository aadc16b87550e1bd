"""The one small interface every payment channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from common.models import PaymentRequest
from workers.providers.base import ProviderReceipt
from workers.providers.route import Binding


@dataclass(frozen=True)
class ExecutionContext:
    #: The provider idempotency key: derived from the payment, the same on every attempt.
    idempotency_key: str
    #: The verified signing-input prefix: associated data of the request's sealed card data.
    signed_prefix: bytes
    #: Which provider the store has for the payment, and whether it is pinned there.
    binding: Binding


class PaymentChannel(Protocol):
    #: The channel name: details `type`, routing key and queue suffix.
    name: str

    @property
    def primary_provider(self) -> str:
        """Where a new payment goes first: the first provider of the channel's route."""
        ...

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        """Move the money once, or raise a common.errors class saying why not."""
        ...

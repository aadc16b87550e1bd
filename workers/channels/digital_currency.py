"""Digital-currency payouts to an address on a network."""

from __future__ import annotations

from common.details import DigitalCurrencyDetails
from common.errors import MalformedMessage
from common.models import PaymentRequest
from workers.channels.base import ExecutionContext
from workers.providers.base import Payout, PayoutProvider, ProviderReceipt
from workers.providers.route import Route


class DigitalCurrencyChannel:
    name = "digital_currency"

    def __init__(self, route: Route[PayoutProvider]) -> None:
        self._route = route

    @property
    def primary_provider(self) -> str:
        return self._route.primary

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        details = request.details
        if not isinstance(details, DigitalCurrencyDetails):
            raise MalformedMessage(f"{details.type} details sent to the digital currency channel")
        payout = Payout(
            reference=str(request.payment_id),
            amount=request.amount,
            network=details.network,
            asset=details.asset,
            destination_address=details.destination_address,
        )
        return self._route.call(
            context.binding,
            lambda provider: provider.payout(payout, idempotency_key=context.idempotency_key),
            recover=lambda provider: provider.lookup(self.name, payout.reference),
        )

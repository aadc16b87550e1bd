"""Card payments: a provider token, or card data unsealed here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.details import CardDetails, CardToken
from common.errors import MalformedMessage
from common.models import PaymentRequest
from common.sealing import open_card
from workers.channels.base import ExecutionContext
from workers.providers.base import CardCharge, CardProvider, ProviderReceipt
from workers.providers.route import Route


class CardChannel:
    name = "card"

    def __init__(
        self, route: Route[CardProvider], sealing_keys: Mapping[str, X25519PrivateKey]
    ) -> None:
        self._route = route
        self._sealing_keys = sealing_keys

    @property
    def primary_provider(self) -> str:
        return self._route.primary

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        details = request.details
        if not isinstance(details, CardDetails):
            raise MalformedMessage(f"{details.type} details sent to the card channel")
        source = details.source
        token = source.token if isinstance(source, CardToken) else None
        card = (
            None
            if isinstance(source, CardToken)
            else open_card(source, private_keys=self._sealing_keys, aad=context.signed_prefix)
        )
        charge = CardCharge(
            reference=str(request.payment_id),
            amount=request.amount,
            token=token,
            card=card,
            metadata=request.metadata,
        )
        return self._route.call(
            context.binding,
            lambda provider: provider.charge(charge, idempotency_key=context.idempotency_key),
            accepts=lambda provider: provider.accepts(charge),
            recover=lambda provider: provider.lookup(self.name, charge.reference),
        )

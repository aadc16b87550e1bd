"""A payment request as signed bytes on the wire. Pure: keys, clock and ids are arguments."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from common.clock import from_ms
from common.details import CardDetails, CardToken, DigitalCurrencyDetails
from common.envelope import OutboundMessage, sign_message
from common.models import PaymentRequest
from common.money import Money
from common.pan import refuse_pans
from common.sealing import CardData, seal_card
from common.signing import REQUEST_TYPE, SignedFields, Signer
from common.topology import Topology


@dataclass(frozen=True)
class SealingKey:
    kid: str
    public_key: X25519PublicKey


@dataclass(frozen=True)
class Draft:
    """Everything a payment request says, before it has times, ids and a signature."""

    amount: Money
    merchant_reference: str
    idempotency_key: str
    #: Exactly one of: a provider token, card data (sealed on encoding), or a payout.
    card_token: str | None = None
    card: CardData | None = field(default=None, repr=False)
    payout: DigitalCurrencyDetails | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    payment_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def channel(self) -> str:
        return "digital_currency" if self.payout is not None else "card"


def encode_request(
    draft: Draft,
    *,
    signer: Signer,
    topology: Topology,
    created_at_ms: int,
    expires_at_ms: int,
    sealing_key: SealingKey | None,
    message_id: str | None = None,
) -> tuple[PaymentRequest, OutboundMessage]:
    """Validate, seal card data for the signed header, serialize once, sign those bytes."""
    if sum(x is not None for x in (draft.card_token, draft.card, draft.payout)) != 1:
        raise ValueError("a payment needs exactly one of: card token, card data, payout details")
    fields = SignedFields(
        message_type=REQUEST_TYPE,
        key_id=signer.key_id,
        route=draft.channel,
        message_id=message_id or str(uuid.uuid4()),
        created_at_ms=created_at_ms,
        expires_at_ms=expires_at_ms,
    )
    details: CardDetails | DigitalCurrencyDetails
    if draft.payout is not None:
        details = draft.payout
    elif draft.card is not None:
        if sealing_key is None:
            raise ValueError("card data needs the card workers' sealing key")
        sealed = seal_card(
            draft.card, kid=sealing_key.kid, public_key=sealing_key.public_key, aad=fields.prefix()
        )
        details = CardDetails(source=sealed)
    else:
        details = CardDetails(source=CardToken(token=str(draft.card_token)))
    request = PaymentRequest(
        payment_id=draft.payment_id,
        idempotency_key=draft.idempotency_key,
        merchant_reference=draft.merchant_reference,
        amount=draft.amount,
        details=details,
        created_at=from_ms(created_at_ms),
        expires_at=from_ms(expires_at_ms),
        metadata=dict(draft.metadata),
    )
    refuse_pans(request)  # before anything is signed, stored or published
    body = request.model_dump_json().encode()
    message = sign_message(
        signer,
        fields,
        body,
        exchange=topology.requests_exchange,
        routing_key=draft.channel,
    )
    return request, message

"""The demo's bad messages: forged, signed by a stranger, tampered with, expired, misrouted."""

from __future__ import annotations

import dataclasses
import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.details import DigitalCurrencyDetails
from common.envelope import OutboundMessage
from common.signing import Signer
from paymq_tools.demo.cases import (
    MINUTE_MS,
    Case,
    CaseKit,
    demo_draft,
    make_message,
    random_address,
)


def bad_messages(kit: CaseKit, rng: random.Random) -> list[Case]:
    """Messages that must never reach a provider: each gets rejected or expired, and is
    dead-lettered with its reason."""
    intruder_key = Ed25519PrivateKey.generate()
    impostor = Signer(kit.signer.key_id, intruder_key)  # claims the real producer's key id
    stranger = Signer("intruder-1", intruder_key)  # a key id nobody trusts
    out: list[Case] = []

    def bad(name: str, message: OutboundMessage, channel: str, status: str, code: str) -> None:
        out.append(Case(name, channel, message, None, status, code))

    bad(
        "forged signature",
        make_message(kit, demo_draft("999.00", "USD", card_token="tok_visa"), signer=impostor),
        "card",
        "rejected",
        "signature_invalid",
    )
    bad(
        "unknown signing key",
        make_message(kit, demo_draft("999.00", "USD", card_token="tok_visa"), signer=stranger),
        "card",
        "rejected",
        "unknown_key",
    )
    genuine = make_message(kit, demo_draft("10.00", "USD", card_token="tok_visa"))
    tampered = dataclasses.replace(
        genuine, body=genuine.body.replace(b'"amount_minor":1000', b'"amount_minor":9000')
    )
    bad("tampered amount", tampered, "card", "rejected", "signature_invalid")
    expired = make_message(
        kit, demo_draft("20.00", "USD", card_token="tok_visa"), age_ms=20 * MINUTE_MS
    )
    out.append(Case("expired before execution", "card", expired, None, "expired", "expired"))
    payout = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address=random_address(rng),
    )
    signed_for_crypto = make_message(kit, demo_draft("0.01", "ETH", payout=payout))
    misrouted = dataclasses.replace(signed_for_crypto, routing_key="card")
    bad("sent to the wrong channel", misrouted, "card", "rejected", "wrong_channel")
    return out

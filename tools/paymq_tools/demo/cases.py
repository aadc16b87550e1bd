"""A demo case: a payment, signed and sealed as the producer would, with the result it must get
(status, code, provider effects) and the sandbox fault aimed at it. Pure construction; the
cases themselves are in cards.py, payouts.py and badmessages.py, the batch in
batch.py.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from common.envelope import OutboundMessage
from common.money import Money
from common.sealing import CardData
from common.signing import Signer
from common.topology import Topology
from producer.encode import Draft, SealingKey, encode_request

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Fault:
    """A sandbox fault rule aimed at this case's payment."""

    action: str
    times: int = 1
    retry_after_s: int = 1


@dataclass(frozen=True)
class Case:
    name: str
    channel: str
    message: OutboundMessage
    payment_id: str | None
    expect_status: str
    expect_code: str | None = None
    #: Provider effects the sandbox ledger must show for this payment (0 or 1).
    expect_effects: int = 0
    fault: Fault | None = None
    #: The provider that must have taken the payment, where routing decides it.
    expect_provider: str | None = None
    #: An on-chain payout: (destination address, amount in minor units, asset), whose balance
    #: tells how many times it was paid.
    payout_to: tuple[str, int, str] | None = None


@dataclass(frozen=True)
class CaseKit:
    signer: Signer
    topology: Topology
    sealing_key: SealingKey
    now_ms: int
    ttl_ms: int = 60 * MINUTE_MS


def card_data(number: str, cvc: str = "123") -> CardData:
    return CardData(number=number, exp_month=12, exp_year=2030, cvc=cvc)


def random_address(rng: random.Random) -> str:
    return to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)))


def make_message(
    kit: CaseKit, draft: Draft, *, signer: Signer | None = None, age_ms: int = 0
) -> OutboundMessage:
    created = kit.now_ms - age_ms
    _, message = encode_request(
        draft,
        signer=signer or kit.signer,
        topology=kit.topology,
        created_at_ms=created,
        expires_at_ms=created + (kit.ttl_ms if age_ms == 0 else age_ms // 2),
        sealing_key=kit.sealing_key,
    )
    return message


def demo_draft(amount: str, currency: str, **source: object) -> Draft:
    reference = f"demo-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money.from_major(amount, currency),
        merchant_reference=reference,
        idempotency_key=reference,
        metadata={"source": "paymq demo"},
        **source,  # type: ignore[arg-type]
    )

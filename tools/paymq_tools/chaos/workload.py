"""The payments of a run: a realistic mix, each with the outcome it must reach and, where the
scenario asks for one, a sandbox fault aimed at it. Pure construction, seeded."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from common.details import DigitalCurrencyDetails
from common.money import Money
from common.sealing import CardData
from paymq_tools.chaos.faults import POISON_PREFIX, Fault, FaultShare
from paymq_tools.chaos.observations import Expect
from producer.encode import Draft

_SUCCESS_TOKENS = ("tok_visa", "tok_mastercard", "tok_success")
_SUCCESS_CARDS = ("4242424242424242", "5555555555554444")
_DECLINE_TOKEN = "tok_insufficient_funds"  # noqa: S105 - the sandbox's published test token
_DECLINE_CARD = "4000000000009995"
_BLOCKED_ADDRESS = "0x000000000000000000000000000000000000dEaD"
#: The sandbox answers `pending` and settles the payout 2 s later (a reconciler finds it).
_SETTLES_LATER_ADDRESS = "0x000000000000000000000000000000000000bEEF"
#: In a chain scenario, the share of payments that are payouts on the chain.
CHAIN_PAYOUT_SHARE = 0.6


@dataclass(frozen=True)
class PlannedPayment:
    draft: Draft
    expect: Expect
    fault: Fault | None = None

    @property
    def payment_id(self) -> str:
        return str(self.draft.payment_id)


def plan_payments(
    count: int,
    rng: random.Random,
    faults: Sequence[FaultShare] = (),
    *,
    settles_later: float = 0.0,
    poison: float = 0.0,
    chain: bool = False,
) -> list[PlannedPayment]:
    """About 55% card tokens, 15% sealed card numbers, 10% card declines, 20% payouts (of all
    payments, 2% to a blocked address, and `settles_later` to an address the provider settles
    later: `pending` until a reconciler looks it up). A `poison` share of all payments are card
    token payments marked with POISON_PREFIX. With `chain`, 60% are ETH payouts on the
    development chain instead, to new addresses."""
    planned = []
    for index in range(count):
        if chain and rng.random() < CHAIN_PAYOUT_SHARE:
            planned.append(PlannedPayment(_chain_payout(index, rng), Expect.SUCCEEDED))
            continue
        draft, expect = _draft(
            index, rng, settles_later, poisoned=rng.random() < poison, cards_only=chain
        )
        fault = _pick_fault(rng, faults, expect)
        planned.append(PlannedPayment(draft, expect, fault))
    return planned


def _draft(
    index: int,
    rng: random.Random,
    settles_later: float,
    *,
    poisoned: bool = False,
    cards_only: bool = False,
) -> tuple[Draft, Expect]:
    reference = f"chaos-{index}-{uuid.uuid4().hex[:8]}"
    if poisoned:
        amount = Money(amount_minor=rng.randint(100, 500_000), currency="USD")
        reference = POISON_PREFIX + reference
        draft = Draft(
            amount=amount,
            merchant_reference=reference,
            idempotency_key=reference,
            card_token=rng.choice(_SUCCESS_TOKENS),
        )
        return draft, Expect.SUCCEEDED
    amount = Money(amount_minor=rng.randint(100, 500_000), currency=rng.choice(("USD", "EUR")))
    token: str | None = None
    card: CardData | None = None
    payout: DigitalCurrencyDetails | None = None
    expect = Expect.SUCCEEDED
    # Below 0.80 a card payment, above it a payout at the sandbox.
    roll = rng.random() * (0.80 if cards_only else 1.0)
    if roll < 0.55:
        token = rng.choice(_SUCCESS_TOKENS)
    elif roll < 0.70:
        card = _card(rng.choice(_SUCCESS_CARDS))
    elif roll < 0.75:
        token, expect = _DECLINE_TOKEN, Expect.DECLINED
    elif roll < 0.80:
        card, expect = _card(_DECLINE_CARD), Expect.DECLINED
    else:
        blocked = roll > 0.98
        asset = rng.choice(("ETH", "USDC"))
        address = _BLOCKED_ADDRESS if blocked else _address(rng)
        if 0.98 - settles_later < roll <= 0.98:
            address = _SETTLES_LATER_ADDRESS
        payout = DigitalCurrencyDetails(
            network="ethereum", asset=asset, destination_address=address
        )
        amount = Money.from_major(f"{rng.randint(1, 900)}.{rng.randint(0, 99):02d}", asset)
        expect = Expect.DECLINED if blocked else Expect.SUCCEEDED
    draft = Draft(
        amount=amount,
        merchant_reference=reference,
        idempotency_key=reference,
        card_token=token,
        card=card,
        payout=payout,
    )
    return draft, expect


def _chain_payout(index: int, rng: random.Random) -> Draft:
    reference = f"chaos-{index}-{uuid.uuid4().hex[:8]}"
    payout = DigitalCurrencyDetails(
        network="ethereum-devnet", asset="ETH", destination_address=_address(rng)
    )
    return Draft(
        amount=Money.from_major(f"{rng.randint(1, 90)}.{rng.randint(0, 999_999):06d}", "ETH"),
        merchant_reference=reference,
        idempotency_key=reference,
        payout=payout,
    )


def _card(number: str) -> CardData:
    return CardData(number=number, exp_month=12, exp_year=2030, cvc="123")


def _address(rng: random.Random) -> str:
    return to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)))


def _pick_fault(rng: random.Random, faults: Sequence[FaultShare], expect: Expect) -> Fault | None:
    roll = rng.random()
    for entry in faults:
        if roll < entry.share:
            if entry.successes_only and expect is not Expect.SUCCEEDED:
                return None
            return entry.fault
        roll -= entry.share
    return None

"""The demo's batch: realistic payments, each with the result it must get. Pure construction."""

from __future__ import annotations

import random

from paymq_tools.demo.badmessages import bad_messages
from paymq_tools.demo.cards import card_cases, stripe_cases
from paymq_tools.demo.cases import Case, CaseKit, Fault, make_message
from paymq_tools.demo.payouts import chain_cases, sandbox_payout_cases
from producer.encode import Draft


def build_cases(
    kit: CaseKit,
    *,
    seed: int = 7,
    stripe: bool = False,
    chain: bool = False,
    chain_tokens: tuple[str, ...] = (),
) -> list[Case]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    cases: list[Case] = []

    def add(
        name: str,
        draft: Draft,
        status: str,
        code: str | None = None,
        *,
        effects: int = 0,
        fault: Fault | None = None,
        provider: str | None = None,
    ) -> None:
        payout = draft.payout
        cases.append(
            Case(
                name,
                draft.channel,
                make_message(kit, draft),
                str(draft.payment_id),
                status,
                code,
                effects,
                fault,
                provider,
                (payout.destination_address, draft.amount.amount_minor, payout.asset)
                if chain and payout
                else None,
            )
        )

    card_cases(add)
    if stripe:
        stripe_cases(add)
    if chain:
        chain_cases(add, chain_tokens)
    else:
        sandbox_payout_cases(add, rng)
    cases.extend(bad_messages(kit, rng))
    return cases

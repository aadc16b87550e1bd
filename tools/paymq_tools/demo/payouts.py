"""The demo's payouts: on a real chain (anvil) when there is one, else through the sandbox."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable

from eth_utils.address import to_checksum_address

from common.details import DigitalCurrencyDetails
from paymq_tools.demo.cases import demo_draft, random_address

#: On chain, a contract that refuses every transfer lives here (the demo installs its code).
REFUSING_CONTRACT = to_checksum_address("0x" + "0" * 36 + "c0de")
#: Its runtime code: PUSH1 0 PUSH1 0 REVERT.
REFUSING_CODE = "0x60006000fd"


def _fresh_address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def chain_cases(add: Callable[..., None], tokens: tuple[str, ...]) -> None:
    """Payouts on a real chain: pending until confirmed, then succeeded. Destinations are new
    accounts every run, so their balances count the transfers (on a chain that persists)."""
    amounts = [("0.05", "ETH"), ("1.5", "ETH"), ("0.000000000000000001", "ETH")]
    amounts += [("250.00", "USDC")] if "USDC" in tokens else []
    for amount, asset in amounts:
        payout = DigitalCurrencyDetails(
            network="ethereum-devnet", asset=asset, destination_address=_fresh_address()
        )
        add(
            f"on-chain payout {amount} {asset}",
            demo_draft(amount, asset, payout=payout),
            "succeeded",
            effects=1,
            provider="ethereum",
        )
    refusing = DigitalCurrencyDetails(
        network="ethereum-devnet", asset="ETH", destination_address=REFUSING_CONTRACT
    )
    add(
        "on-chain payout to a contract that refuses ETH",
        demo_draft("0.30", "ETH", payout=refusing),
        "failed",
        "destination_refuses_transfer",
    )


def sandbox_payout_cases(add: Callable[..., None], rng: random.Random) -> None:
    for amount, asset in [("0.05", "ETH"), ("1.5", "ETH"), ("250.00", "USDC")]:
        payout = DigitalCurrencyDetails(
            network="ethereum",
            asset=asset,
            destination_address=random_address(rng),
        )
        add(f"payout {asset}", demo_draft(amount, asset, payout=payout), "succeeded", effects=1)
    confirming = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x000000000000000000000000000000000000bEEF",
    )
    add(
        "payout pending confirmations, settled",
        demo_draft("0.20", "ETH", payout=confirming),
        "succeeded",
        effects=1,
    )
    blocked = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x000000000000000000000000000000000000dEaD",
    )
    add(
        "payout to a blocked address",
        demo_draft("0.10", "ETH", payout=blocked),
        "declined",
        "address_blocked",
    )

"""What the providers recorded, for the demo's verdict: Stripe's PaymentIntents, and the
chain's balances that count each on-chain payout (the sandbox's ledger is read in run.py).
"""

from __future__ import annotations

from collections import Counter

import requests

from common.settings import Settings
from paymq_tools.demo.cases import Case
from paymq_tools.devchain import balance_of


def stripe_intents(settings: Settings) -> Counter[str] | None:
    """PaymentIntents by our payment id, read with Stripe's plain list API."""
    key = settings.stripe.secret_key()
    if "stripe" not in settings.providers.card_providers or key is None:
        return None
    found: Counter[str] = Counter()
    params: dict[str, str] = {"limit": "100"}
    with requests.Session() as http:
        http.auth = (key, "")
        while True:
            page = http.get(
                f"{settings.stripe.stripe_api_base}/v1/payment_intents", params=params, timeout=10
            )
            page.raise_for_status()
            body = page.json()
            found.update(i["metadata"].get("paymq_payment_id") for i in body["data"])
            if not body["has_more"]:
                return found
            params["starting_after"] = body["data"][-1]["id"]


def chain_transfers(settings: Settings, cases: list[Case]) -> Counter[str]:
    """How many times each on-chain payout was paid, from its destination's balance."""
    paid: Counter[str] = Counter()
    with requests.Session() as http:
        for case in cases:
            if case.payout_to is None or case.payment_id is None:
                continue
            address, amount, asset = case.payout_to
            token = settings.ethereum.ethereum_tokens.get(asset)
            paid[case.payment_id] = (
                balance_of(http, settings.ethereum.ethereum_rpc_url, address, token) // amount
            )
    return paid

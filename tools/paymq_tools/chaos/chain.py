"""The chain of a chain scenario: anvil with a block a second, one funded hot wallet for every
worker, and afterwards what the chain says: each payout's transfers, counted from its new
destination's balance, and whether the wallet's nonces were each used exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from pydantic import SecretStr

from common.clock import SystemClock
from paymq_tools.devchain import Anvil, balance_of
from producer.encode import Draft
from store.chain import ChainTransactions
from store.database import create_store_engine

BLOCK_TIME_S = 1
CONFIRMATIONS = 2
_WALLET_WEI = 10**24


class ChainStage:
    def __init__(self, work_dir: Path) -> None:
        self.node = Anvil(work_dir / "anvil.log", block_time_s=BLOCK_TIME_S)
        self._wallet = Account.create()
        self._running = False

    def settings(self) -> dict[str, Any]:
        """What every process of the run needs to pay out on this chain."""
        return {
            "payout_providers": ("ethereum",),
            "ethereum_rpc_url": self.node.url,
            "ethereum_network": "ethereum-devnet",
            "ethereum_chain_id": self.node.chain_id,
            "ethereum_private_key": SecretStr("0x" + bytes(self._wallet.key).hex()),
            "ethereum_confirmations": CONFIRMATIONS,
        }

    def start(self) -> None:
        self.node.__enter__()
        self._running = True
        self.node.fund(self._wallet.address, _WALLET_WEI)

    def stop(self) -> None:
        if self._running:
            self.node.__exit__(None, None, None)
            self._running = False

    def effects(self, drafts: Iterable[Draft]) -> list[dict[str, object]]:
        """One effect per transfer a payout's destination received (each address is new)."""
        found: list[dict[str, object]] = []
        with requests.Session() as http:
            for draft in drafts:
                if draft.payout is None:
                    continue
                received = balance_of(http, self.node.url, draft.payout.destination_address)
                transfers = received // draft.amount.amount_minor
                found += [{"reference": str(draft.payment_id), "provider": "ethereum"}] * transfers
        return found

    def audit(self, database_url: str) -> tuple[int, tuple[str, ...]]:
        """The wallet's signed transactions, and problems: nonces not exactly 0..n-1, or
        signed transactions the chain has not mined."""
        engine = create_store_engine(database_url, pool_size=1)
        try:
            signed = ChainTransactions(engine, SystemClock()).wallet_transactions(
                self.node.chain_id, self._wallet.address
            )
        finally:
            engine.dispose()
        problems = []
        nonces = [tx.nonce for tx in signed]
        if nonces != list(range(len(signed))):
            problems.append(f"nonces are not 0..{len(signed) - 1}: {nonces[:20]}...")
        mined = self.node.nonce(self._wallet.address)
        if mined != len(signed):
            problems.append(f"{len(signed)} transactions signed, {mined} mined")
        return len(signed), tuple(problems)

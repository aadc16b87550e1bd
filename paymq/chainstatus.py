"""`paymq chain status`: the hot wallet as an operator needs to see it. Its balance, the nonces
(the store's next one, the node's count of mined and of pending transactions), and the signed
transactions the chain has not mined yet, oldest first. A transaction that stays unmined holds
back every payout after it (docs/ethereum.md), so its age is the figure to alert on."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from common.clock import SystemClock
from common.errors import ConfigurationError
from common.settings import Settings
from store.chain import ChainTransactions
from store.database import engine_for, require_current
from workers.providers.ethereum import hot_wallet
from workers.providers.ethereum_node import EthereumNode

console = Console(highlight=False)
_LISTED = 20


def wallet_status(settings: Settings) -> dict[str, Any]:
    key = settings.ethereum.wallet_key()
    if key is None:
        raise ConfigurationError(
            "no hot wallet configured: PAYMQ_ETHEREUM_PRIVATE_KEY_FILE or "
            "PAYMQ_ETHEREUM_PRIVATE_KEY"
        )
    address = str(hot_wallet(key).address)
    chain_id = settings.ethereum.expected_chain_id()
    node = EthereumNode(
        settings.ethereum.ethereum_rpc_url, timeout_s=settings.ethereum.ethereum_rpc_timeout_s
    )
    engine = engine_for(settings.store, pool_size=1)
    try:
        require_current(engine)
        store = ChainTransactions(engine, SystemClock())
        mined = node.transaction_count(address, pending=False)
        unmined = store.signed_since(chain_id, address, mined)
        now_ms = SystemClock().now_ms()
        return {
            "address": address,
            "network": settings.ethereum.ethereum_network,
            "chain_id": chain_id,
            "node_chain_id": node.chain_id(),
            "balance_wei": str(node.balance_wei(address)),
            "store_next_nonce": store.next_nonce(chain_id, address),
            "node_mined_nonce": mined,
            "node_pending_nonce": node.transaction_count(address, pending=True),
            "unmined": len(unmined),
            "oldest_unmined_age_s": round((now_ms - unmined[0].created_ms) / 1000, 1)
            if unmined
            else None,
            "unmined_transactions": [
                {
                    "nonce": tx.nonce,
                    "payment_id": tx.payment_id,
                    "tx_hash": tx.tx_hash,
                    "age_s": round((now_ms - tx.created_ms) / 1000, 1),
                    "in_node_pool": node.knows(tx.tx_hash),
                }
                for tx in unmined[:_LISTED]
            ],
        }
    finally:
        node.close()
        engine.dispose()


def show(status: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status))
        return
    for name in (
        "address",
        "network",
        "chain_id",
        "node_chain_id",
        "balance_wei",
        "store_next_nonce",
        "node_mined_nonce",
        "node_pending_nonce",
        "unmined",
        "oldest_unmined_age_s",
    ):
        console.print(f"{name:>22}: {status[name]}")
    if status["chain_id"] != status["node_chain_id"]:
        console.print("[red]the node is on another chain: nothing will be signed[/red]")
    if status["unmined_transactions"]:
        table = Table(title="signed, not mined (oldest first; later payouts wait for these)")
        for column in ("nonce", "payment_id", "tx_hash", "age_s", "in_node_pool"):
            table.add_column(column)
        for tx in status["unmined_transactions"]:
            table.add_row(*(str(tx[column]) for column in tx))
        console.print(table)

"""The demo's Ethereum chain: a local anvil with a new funded hot wallet and a USDC-style
token, and the contract that refuses every transfer installed where the batch expects it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import requests
from eth_account import Account
from pydantic import SecretStr
from rich.console import Console

from common.settings import Settings
from paymq_tools.demo.payouts import REFUSING_CODE, REFUSING_CONTRACT
from paymq_tools.devchain import Anvil, anvil_path, deploy_token, rpc_call, solcjs_path

console = Console(highlight=False)

#: The demo chain makes a block a second; a payout is succeeded after 2 (production: 12 or more).
DEMO_BLOCK_TIME_S = 1
DEMO_CONFIRMATIONS = 2
#: What the demo's new hot wallet is given on the demo chain: ETH, and USDC-style tokens.
DEMO_HOT_WALLET_WEI = 1_000 * 10**18
DEMO_HOT_WALLET_USDC = 1_000_000 * 10**6


def on_demo_chain(settings: Settings, work_dir: Path, stack: contextlib.ExitStack) -> Settings:
    """Payouts on a local Ethereum chain (anvil, from `make install`), from a new hot wallet;
    without anvil, payouts go to the sandbox provider."""
    if anvil_path() is None:
        console.print("[yellow]![/yellow] anvil not installed (make install): sandbox payouts")
        return settings
    node = stack.enter_context(Anvil(work_dir / "anvil.log", block_time_s=DEMO_BLOCK_TIME_S))
    wallet, issuer = Account.create(), Account.create()
    node.fund(wallet.address, DEMO_HOT_WALLET_WEI)
    node.fund(issuer.address, DEMO_HOT_WALLET_WEI)
    console.print(
        f"[green]✓[/green] Ethereum node (anvil) on {node.url}, chain {node.chain_id}, a block "
        f"every {DEMO_BLOCK_TIME_S} s; hot wallet {wallet.address}"
    )
    tokens: dict[str, str] = {}
    if solcjs_path() is not None:
        tokens["USDC"] = deploy_token(
            node,
            issuer,
            wallet.address,
            decimals=6,
            supply=DEMO_HOT_WALLET_USDC,
            work_dir=work_dir,
        )
        console.print(
            f"[green]✓[/green] USDC-style token (ERC-20, 6 decimals) at {tokens['USDC']}, "
            f"{DEMO_HOT_WALLET_USDC // 10**6:,} held by the hot wallet"
        )
    return settings.replace(
        payout_providers=("ethereum",),
        ethereum_rpc_url=node.url,
        ethereum_network="ethereum-devnet",
        ethereum_chain_id=node.chain_id,
        ethereum_private_key=SecretStr("0x" + bytes(wallet.key).hex()),
        ethereum_confirmations=DEMO_CONFIRMATIONS,
        ethereum_tokens=tokens,
    )


def install_refusing_contract(settings: Settings) -> None:
    with requests.Session() as http:
        rpc_call(
            http,
            settings.ethereum.ethereum_rpc_url,
            "anvil_setCode",
            REFUSING_CONTRACT,
            REFUSING_CODE,
        )

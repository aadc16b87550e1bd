"""`paymq bench-chain`: on-chain payouts/s from one hot wallet, and what each one costs.

A local anvil (automine), a new funded wallet, the payment store (a fresh SQLite file, or the
given URL), and P processes of T threads each calling the ethereum provider directly: check the
chain, estimate, sign with the next nonce from the store, store, broadcast. Throughput is
payouts / (last payout's end - first payout's start); anvil runs on the same cores. Every nonce
is taken under the wallet's lock, so this measures how far one wallet goes with many workers.
Afterwards it checks that the nonces are exactly 0..N-1 and that every destination got its
amount once.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from rich.console import Console

from common.clock import SystemClock
from common.money import Money
from paymq_tools.bench.workdir import run_directory
from paymq_tools.devchain import Anvil
from store.chain import ChainTransactions
from store.database import create_store_engine, upgrade
from workers.providers.base import Payout

if TYPE_CHECKING:
    from workers.providers.ethereum import EthereumProvider

console = Console(stderr=True, highlight=False)
_CONFIRM_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ChainBenchOptions:
    payouts: int
    processes: int
    threads: int
    as_json: bool
    database_url: str | None = None


def devnet_provider(store_url: str, rpc_url: str, key: str, *, pool_size: int) -> EthereumProvider:
    """An ethereum provider on a local anvil (chain 31337), with its own store engine."""
    from workers.providers.ethereum import (  # noqa: PLC0415 - web3 on demand
        EthereumConfig,
        EthereumProvider,
    )

    config = EthereumConfig(
        rpc_url=rpc_url,
        private_key=key,
        network="ethereum-devnet",
        chain_id=31337,
        confirmations=1,
        max_fee_per_gas_wei=200 * 10**9,
        max_priority_fee_per_gas_wei=2 * 10**9,
        rpc_timeout_s=30.0,
    )
    engine = create_store_engine(store_url, pool_size=pool_size)
    return EthereumProvider(config, ChainTransactions(engine, SystemClock()))


def _pay(
    store_url: str, rpc_url: str, key: str, threads: int, payouts: list[Payout]
) -> tuple[float, float, list[float]]:
    """One worker process: its own provider and store engine. Returns when its first payout
    started and its last ended (wall clock, so processes compare) and each payout's ms."""
    provider = devnet_provider(store_url, rpc_url, key, pool_size=threads)

    def pay(payout: Payout) -> float:
        started = time.perf_counter()
        provider.payout(payout, idempotency_key=payout.reference)
        return (time.perf_counter() - started) * 1000

    try:
        started = time.time()
        with ThreadPoolExecutor(threads) as pool:
            latencies = list(pool.map(pay, payouts))
        return started, time.time(), latencies
    finally:
        provider.close()


def run_chain_bench(options: ChainBenchOptions) -> int:
    with run_directory("paymq-bench-chain-", keep=False) as run:
        run.succeeded = _run_chain_bench(options, run.path)
    return 0 if run.succeeded else 1


def _run_chain_bench(options: ChainBenchOptions, work_dir: Path) -> bool:
    store_url = options.database_url or f"sqlite:///{work_dir / 'paymq.db'}"
    engine = create_store_engine(store_url)
    upgrade(engine)
    with Anvil(work_dir / "anvil.log") as node:
        wallet = Account.create()
        node.fund(wallet.address, 10**24)
        payouts = [
            Payout(
                reference=str(uuid.uuid4()),
                amount=Money(amount_minor=10**15 + index, currency="ETH"),
                network="ethereum-devnet",
                asset="ETH",
                destination_address=Account.create().address,
            )
            for index in range(options.payouts)
        ]
        shares = [payouts[i :: options.processes] for i in range(options.processes)]
        key = "0x" + bytes(wallet.key).hex()
        console.print(
            f"{options.payouts} payouts from one wallet: {options.processes} processes x "
            f"{options.threads} threads, store {engine.url.render_as_string(hide_password=True)}"
        )
        with multiprocessing.get_context("spawn").Pool(options.processes) as pool:
            jobs = [
                pool.apply_async(_pay, (store_url, node.url, key, options.threads, share))
                for share in shares
            ]
            done = [job.get() for job in jobs]
        # From the first payout to the last: process start-up and imports are not counted.
        seconds = max(end for _, end, _ in done) - min(start for start, _, _ in done)
        latencies = sorted(ms for _, _, each in done for ms in each)
        mined_by = _wait(lambda: node.nonce(wallet.address) >= options.payouts)
        stored = ChainTransactions(engine, SystemClock()).wallet_transactions(31337, wallet.address)
        landed_once = sum(
            node.balance(p.destination_address) == p.amount.amount_minor for p in payouts
        )
    engine.dispose()
    figures = {
        "payouts": options.payouts,
        "processes": options.processes,
        "threads_per_process": options.threads,
        "seconds_first_to_last": round(seconds, 2),
        "payouts_per_s": round(options.payouts / seconds, 1),
        "latency_p50_ms": round(latencies[len(latencies) // 2], 1),
        "latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "all_mined": mined_by,
        "nonces_exactly_0_to_n": [tx.nonce for tx in stored] == list(range(options.payouts)),
        "landed_once": landed_once,
    }
    if options.as_json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            console.print(f"{name:>28}: {value}")
    return bool(figures["nonces_exactly_0_to_n"]) and landed_once == options.payouts


def _wait(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + _CONFIRM_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False

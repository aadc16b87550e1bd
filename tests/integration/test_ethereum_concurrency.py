"""Many payouts at once from one hot wallet: two processes, each with several threads, every
payout delivered twice at the same time. Every nonce must be used exactly once and every payout
must land exactly once, on both stores (PostgreSQL: SELECT ... FOR UPDATE; SQLite: its single
writer)."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from common.clock import SystemClock
from common.money import Money
from paymq_tools.bench.chain import devnet_provider
from paymq_tools.devchain import Anvil
from store.chain import ChainTransactions
from tests.integration.helpers import cli_env, run_cli, wait_until
from workers.providers.base import Payout

pytestmark = pytest.mark.integration

PROCESSES = 2
THREADS_PER_PROCESS = 6
PAYOUTS = 40


def pay_concurrently(
    store_url: str, rpc_url: str, private_key: str, payouts: list[Payout]
) -> list[tuple[str, str]]:
    """One worker process: its own store engine and provider; each payout sent by two threads
    at once. Returns (reference, transaction hash) for every call."""
    provider = devnet_provider(store_url, rpc_url, private_key, pool_size=THREADS_PER_PROCESS)

    def pay(payout: Payout) -> tuple[str, str]:
        return payout.reference, provider.payout(payout, idempotency_key=payout.reference).reference

    try:
        with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
            return list(pool.map(pay, [p for payout in payouts for p in (payout, payout)]))
    finally:
        provider.close()


def test_concurrent_payouts_use_every_nonce_once_and_land_once(
    anvil: Anvil, store_engine: Engine
) -> None:
    wallet: LocalAccount = Account.create()
    anvil.fund(wallet.address, 1000 * 10**18)
    payouts = [
        Payout(
            reference=str(uuid.uuid4()),
            amount=Money(amount_minor=10**15 + index, currency="ETH"),
            network="ethereum-devnet",
            asset="ETH",
            destination_address=Account.create().address,
        )
        for index in range(PAYOUTS)
    ]
    store_url = store_engine.url.render_as_string(hide_password=False)
    key = "0x" + bytes(wallet.key).hex()
    shares = [payouts[index::PROCESSES] for index in range(PROCESSES)]

    with multiprocessing.get_context("spawn").Pool(PROCESSES) as processes:
        calls = [
            call
            for share in processes.starmap(
                pay_concurrently, [(store_url, anvil.url, key, share) for share in shares]
            )
            for call in share
        ]

    # Both deliveries of a payout answered the same transaction; each payout has its own.
    by_reference: dict[str, set[str]] = {}
    for reference, tx_hash in calls:
        by_reference.setdefault(reference, set()).add(tx_hash)
    assert len(calls) == 2 * PAYOUTS
    assert all(len(hashes) == 1 for hashes in by_reference.values())
    assert len({next(iter(hashes)) for hashes in by_reference.values()}) == PAYOUTS

    stored = ChainTransactions(store_engine, SystemClock()).wallet_transactions(
        31337, wallet.address
    )
    assert [tx.nonce for tx in stored] == list(range(PAYOUTS))
    assert {tx.payment_id: {tx.tx_hash} for tx in stored} == by_reference

    wait_until(lambda: anvil.nonce(wallet.address) == PAYOUTS, timeout_s=30, what="all mined")
    on_chain = anvil.transactions_from(wallet.address)
    assert sorted(int(tx["nonce"], 16) for tx in on_chain) == list(range(PAYOUTS))
    assert {tx["hash"] for tx in on_chain} == {tx.tx_hash for tx in stored}
    for payout in payouts:
        assert anvil.balance(payout.destination_address) == payout.amount.amount_minor


def test_the_chain_benchmark_checks_its_nonces_and_transfers(anvil: Anvil, tmp_path: Path) -> None:
    # The benchmark's own anvil; this fixture only makes the test skip (or fail in CI) without
    # one. Its figures are not asserted: speed belongs to benchmarks, not tests.
    completed = run_cli(
        "bench-chain",
        "--payouts",
        "24",
        "--processes",
        "2",
        "--threads",
        "3",
        "--json",
        env=cli_env(),
        cwd=tmp_path,
        timeout_s=180,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    figures = json.loads(completed.stdout)
    assert figures["payouts"] == 24
    assert figures["nonces_exactly_0_to_n"] is True
    assert figures["landed_once"] == 24
    assert figures["all_mined"] is True

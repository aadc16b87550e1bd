"""Many payouts at once from one hot wallet: two processes, each with several threads, every
payout delivered twice at the same time. Every nonce must be used exactly once and every payout
must land exactly once, on both stores (PostgreSQL: SELECT ... FOR UPDATE; SQLite: its single
writer)."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from common.clock import SystemClock
from common.money import Money
from paymq.devchain import Anvil
from tests.integration.helpers import wait_until
from tests.stores import postgres_engine, sqlite_engine
from workers.providers.base import Payout
from workers.providers.ethereum import EthereumProvider
from workers.store.chain import ChainTransactions
from workers.store.database import create_store_engine

pytestmark = pytest.mark.integration

PROCESSES = 2
THREADS_PER_PROCESS = 6
PAYOUTS = 40


def pay_concurrently(
    store_url: str, rpc_url: str, private_key: str, payouts: list[Payout]
) -> list[tuple[str, str]]:
    """One worker process: its own store engine and provider; each payout sent by two threads
    at once. Returns (reference, transaction hash) for every call."""
    engine = create_store_engine(store_url, pool_size=THREADS_PER_PROCESS)
    provider = EthereumProvider(
        rpc_url=rpc_url,
        private_key=private_key,
        network="ethereum-devnet",
        chain_id=31337,
        confirmations=1,
        max_fee_per_gas_wei=200 * 10**9,
        max_priority_fee_per_gas_wei=2 * 10**9,
        rpc_timeout_s=10.0,
        transactions=ChainTransactions(engine, SystemClock()),
    )

    def pay(payout: Payout) -> tuple[str, str]:
        return payout.reference, provider.payout(payout, idempotency_key=payout.reference).reference

    try:
        with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
            return list(pool.map(pay, [p for payout in payouts for p in (payout, payout)]))
    finally:
        provider.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    store = sqlite_engine(tmp_path) if request.param == "sqlite" else postgres_engine()
    with store as opened:
        yield opened


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

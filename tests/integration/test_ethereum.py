"""The ethereum payout provider against a real EVM node (anvil) and the real store.

Every test starts its own anvil and a fresh hot wallet funded there; tests control mining
(automine, `--no-mining`, `anvil_mine`) and misbehave the node the way real ones do (dropped
transactions, lost answers, replaced nonces, reverting destinations).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine

from common.clock import SystemClock
from common.errors import (
    ChainIdMismatch,
    FeesAboveCap,
    HotWalletUnderfunded,
    NoEffectAtProvider,
    ProviderRejected,
    RetryableError,
    SignedTransactionInDoubt,
    StoreUnavailable,
    TransactionNotAccepted,
)
from common.money import Money
from paymq_tools.devchain import Anvil
from store.chain import ChainTransactions, StoredTransaction
from tests.integration.helpers import cli_env, run_cli, wait_until
from tests.integration.rpcproxy import RpcProxy
from tests.stores import sqlite_engine
from workers.providers.base import Payout
from workers.providers.ethereum import EthereumConfig, EthereumProvider

pytestmark = pytest.mark.integration

ONE_ETH = 10**18
#: 0.0123 ETH: more than 2^53 wei, so it travels as a decimal string on the wire.
AMOUNT_WEI = 12_300_000_000_000_000


@pytest.fixture
def transactions(store_engine: Engine) -> ChainTransactions:
    return ChainTransactions(store_engine, SystemClock())


@pytest.fixture
def wallet(anvil: Anvil) -> LocalAccount:
    account: LocalAccount = Account.create()
    anvil.fund(account.address, 100 * ONE_ETH)
    return account


def provider_for(
    anvil: Anvil | str,
    wallet: LocalAccount,
    transactions: ChainTransactions,
    **overrides: Any,
) -> EthereumProvider:
    config = EthereumConfig(
        rpc_url=anvil if isinstance(anvil, str) else anvil.url,
        private_key="0x" + bytes(wallet.key).hex(),
        network="ethereum-devnet",
        chain_id=31337,
        confirmations=3,
        max_fee_per_gas_wei=200 * 10**9,
        max_priority_fee_per_gas_wei=2 * 10**9,
        rpc_timeout_s=5.0,
    )
    return EthereumProvider(replace(config, **overrides), transactions)


def new_payout(amount_wei: int = AMOUNT_WEI, **overrides: Any) -> Payout:
    fields: dict[str, Any] = {
        "reference": str(uuid.uuid4()),
        "amount": Money(amount_minor=amount_wei, currency="ETH"),
        "network": "ethereum-devnet",
        "asset": "ETH",
        "destination_address": Account.create().address,
    }
    return Payout(**(fields | overrides))


def mined(anvil: Anvil, tx_hash: str) -> dict[str, Any]:
    """The transaction's receipt, once automine has put it in a block."""
    receipt: dict[str, Any] = wait_until(
        lambda: anvil.receipt(tx_hash), timeout_s=10, what=f"{tx_hash} mined"
    )
    return receipt


def test_payout_is_pending_until_its_confirmations(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    provider = provider_for(anvil, wallet, transactions, confirmations=3)
    payout = new_payout()

    receipt = provider.payout(payout, idempotency_key="k1")

    assert (receipt.provider, receipt.settled) == ("ethereum", False)
    assert mined(anvil, receipt.reference)["status"] == "0x1"  # automine: 1 confirmation
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI
    anvil.mine(1)
    looked_up = provider.lookup("digital_currency", payout.reference)
    assert looked_up is not None
    assert not looked_up.settled
    anvil.mine(1)
    looked_up = provider.lookup("digital_currency", payout.reference)
    assert looked_up is not None
    assert looked_up.settled
    assert looked_up.reference == receipt.reference
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI


def test_lookup_of_a_payment_never_signed_is_none(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    provider = provider_for(anvil, wallet, transactions)
    assert provider.lookup("digital_currency", str(uuid.uuid4())) is None


def test_a_redelivery_broadcasts_the_same_bytes_and_never_signs_again(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    anvil.automine(False)
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    payout = new_payout()

    first = provider.payout(payout, idempotency_key="k")
    again_in_pool = provider.payout(payout, idempotency_key="k")  # "already imported"
    anvil.mine(1)
    again_mined = provider.payout(payout, idempotency_key="k")  # "nonce too low"

    assert first.reference == again_in_pool.reference == again_mined.reference
    assert again_mined.settled
    assert [tx.tx_hash for tx in transactions.wallet_transactions(31337, wallet.address)] == [
        first.reference
    ]
    assert anvil.nonce(wallet.address) == 1
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI
    assert len(anvil.transactions_from(wallet.address)) == 1


def test_a_lost_broadcast_answer_is_resolved_by_looking_up_our_transaction(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    with RpcProxy(anvil.url, "eth_sendRawTransaction").running() as proxy:
        proxy.mode = "lose"
        provider = provider_for(proxy.url, wallet, transactions, confirmations=1)
        payout = new_payout()

        receipt = provider.payout(payout, idempotency_key="k")

    assert proxy.interfered == 1
    assert receipt.settled  # mined on arrival (automine), found by its hash
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI
    assert anvil.nonce(wallet.address) == 1


def test_the_signed_transaction_is_stored_before_broadcast_and_sent_again_unchanged(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    with RpcProxy(anvil.url, "eth_sendRawTransaction").running() as proxy:
        proxy.mode = "refuse"
        refused = provider_for(proxy.url, wallet, transactions, confirmations=1)
        payout = new_payout()
        with pytest.raises(TransactionNotAccepted):
            refused.payout(payout, idempotency_key="k")

    stored = transactions.find(payout.reference)
    assert stored is not None
    assert stored.nonce == 0
    assert anvil.receipt(stored.tx_hash) is None  # the node never saw it
    assert anvil.balance(payout.destination_address) == 0

    # The reconciler's lookup finds the node ignorant of it, nonce free: the same bytes again.
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    receipt = provider.lookup("digital_currency", payout.reference)

    assert receipt is not None
    assert receipt.reference == stored.tx_hash
    assert mined(anvil, stored.tx_hash)["status"] == "0x1"
    assert transactions.find(payout.reference) == stored
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI


def test_a_dropped_transaction_is_broadcast_again_and_lands_once(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    anvil.automine(False)
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    payout = new_payout()
    receipt = provider.payout(payout, idempotency_key="k")
    anvil.drop(receipt.reference)

    pending = provider.lookup("digital_currency", payout.reference)
    anvil.mine(1)
    settled = provider.lookup("digital_currency", payout.reference)

    assert pending is not None
    assert not pending.settled
    assert settled is not None
    assert settled.settled
    assert settled.reference == receipt.reference
    assert anvil.balance(payout.destination_address) == AMOUNT_WEI


def test_a_transaction_dropped_and_replaced_fails_with_nothing_moved(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    anvil.automine(False)
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    payout = new_payout()
    receipt = provider.payout(payout, idempotency_key="k")
    ours = transactions.find(payout.reference)
    assert ours is not None
    anvil.drop(receipt.reference)
    # Someone else with the wallet's key uses the nonce (another tool, a fee bump by hand).
    other = wallet.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": ours.nonce,
            "to": wallet.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10 * 10**9,
            "maxPriorityFeePerGas": 2 * 10**9,
        }
    )
    anvil.send_raw(bytes(other.raw_transaction))
    anvil.mine(1)

    with pytest.raises(NoEffectAtProvider) as failed:
        provider.lookup("digital_currency", payout.reference)

    assert failed.value.code == "dropped_and_replaced"
    assert anvil.balance(payout.destination_address) == 0


def test_a_reverted_transaction_fails(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    anvil.automine(False)
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    payout = new_payout()
    provider.payout(payout, idempotency_key="k")
    # The destination becomes a contract that refuses ETH (PUSH1 0 PUSH1 0 REVERT).
    anvil.set_code(payout.destination_address, "0x60006000fd")
    anvil.mine(1)

    with pytest.raises(NoEffectAtProvider) as failed:
        provider.lookup("digital_currency", payout.reference)

    assert failed.value.code == "reverted"
    assert anvil.balance(payout.destination_address) == 0


def test_a_destination_that_refuses_ether_fails_before_anything_is_signed(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    provider = provider_for(anvil, wallet, transactions)
    payout = new_payout()
    anvil.set_code(payout.destination_address, "0x60006000fd")

    with pytest.raises(ProviderRejected) as rejected:
        provider.payout(payout, idempotency_key="k")

    assert rejected.value.code == "destination_refuses_transfer"
    assert transactions.find(payout.reference) is None


@pytest.mark.parametrize(
    ("overrides", "fund_wei", "error"),
    [
        ({"chain_id": 1}, 100 * ONE_ETH, ChainIdMismatch),
        # anvil's base fee starts at 1 gwei; with a 1 gwei tip it cannot fit under 1.5 gwei.
        ({"max_fee_per_gas_wei": 1_500_000_000}, 100 * ONE_ETH, FeesAboveCap),
        ({}, AMOUNT_WEI, HotWalletUnderfunded),  # the payout but not its fee
    ],
    ids=["chain-id-mismatch", "fees-above-cap", "underfunded"],
)
def test_nothing_is_signed_when_the_payout_cannot_go_now(
    anvil: Anvil,
    wallet: LocalAccount,
    transactions: ChainTransactions,
    overrides: dict[str, Any],
    fund_wei: int,
    error: type[RetryableError],
) -> None:
    anvil.fund(wallet.address, fund_wei)
    provider = provider_for(anvil, wallet, transactions, **overrides)
    payout = new_payout()

    with pytest.raises(error) as raised:
        provider.payout(payout, idempotency_key="k")

    assert isinstance(raised.value, RetryableError)  # nothing exists that could move money
    assert transactions.find(payout.reference) is None
    assert anvil.nonce(wallet.address) == 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"network": "ethereum"}, "network_not_served"), ({"asset": "USDC"}, "asset_not_supported")],
)
def test_a_payout_this_wallet_cannot_make_fails_unsigned(
    anvil: Anvil,
    wallet: LocalAccount,
    transactions: ChainTransactions,
    overrides: dict[str, Any],
    code: str,
) -> None:
    provider = provider_for(anvil, wallet, transactions)
    amount = Money(amount_minor=5_000_000, currency=overrides.get("asset", "ETH"))
    payout = new_payout(**overrides, amount=amount)

    with pytest.raises(ProviderRejected) as rejected:
        provider.payout(payout, idempotency_key="k")

    assert rejected.value.code == code
    assert transactions.find(payout.reference) is None


def test_the_hot_wallet_key_is_never_logged(
    anvil: Anvil,
    wallet: LocalAccount,
    transactions: ChainTransactions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = provider_for(anvil, wallet, transactions, confirmations=1)
    payout = new_payout()
    receipt = provider.payout(payout, idempotency_key="k")
    provider.lookup("digital_currency", payout.reference)

    key_hex = bytes(wallet.key).hex()
    assert receipt.reference in caplog.text  # the log says what happened...
    assert key_hex not in caplog.text.lower()  # ...and never with what key
    assert key_hex not in repr(provider).lower()


def test_a_redelivery_to_a_node_on_another_chain_is_in_doubt_never_failed(
    anvil: Anvil, wallet: LocalAccount, transactions: ChainTransactions
) -> None:
    anvil.automine(False)
    payout = new_payout()
    first = provider_for(anvil, wallet, transactions).payout(payout, idempotency_key="k")
    # The worker restarts pointed at a node of another chain (as far as it can tell)
    misconfigured = provider_for(anvil, wallet, transactions, chain_id=1)

    with pytest.raises(TransactionNotAccepted) as unknown:
        misconfigured.payout(payout, idempotency_key="k")

    # An outcome left unknown (the signed transaction may still land), not a retryable failure
    assert not isinstance(unknown.value, RetryableError)
    assert "chain id" in str(unknown.value)
    anvil.mine(1)
    assert mined(anvil, first.reference)["status"] == "0x1"


class CommitAnswerLost(ChainTransactions):
    """The real store, where the database's answer to storing a signed transaction is lost:
    after the commit (`stored=True`) or before it."""

    def __init__(self, engine: Engine, *, stored: bool) -> None:
        super().__init__(engine, SystemClock())
        self._stored = stored

    def sign_and_store(self, payment_id: str, **kwargs: Any) -> StoredTransaction:
        if self._stored:
            super().sign_and_store(payment_id, **kwargs)
        raise StoreUnavailable("payment store unavailable: OperationalError")


@pytest.mark.parametrize("stored", [True, False], ids=["after-commit", "before-commit"])
def test_a_store_failure_while_storing_a_signed_transaction_is_in_doubt_never_failed(
    anvil: Anvil, wallet: LocalAccount, store_engine: Engine, stored: bool
) -> None:
    # Given a store that fails while the payout's signed transaction is being stored
    failing = CommitAnswerLost(store_engine, stored=stored)
    payout = new_payout()
    with pytest.raises(SignedTransactionInDoubt) as unknown:
        provider_for(anvil, wallet, failing).payout(payout, idempotency_key="k")
    # Then the outcome is unknown (a stored transaction must still be sent), not retryable
    assert not isinstance(unknown.value, RetryableError)

    # And the reconciler's lookup settles it: sent if it was stored, nothing if it was not
    transactions = ChainTransactions(store_engine, SystemClock())
    found = provider_for(anvil, wallet, transactions).lookup("digital_currency", payout.reference)
    if stored:
        assert found is not None
        assert mined(anvil, found.reference)["status"] == "0x1"
        assert anvil.balance(payout.destination_address) == AMOUNT_WEI
    else:
        assert found is None
        assert anvil.nonce(wallet.address) == 0


def test_chain_status_shows_the_unmined_transactions_that_hold_back_later_payouts(
    anvil: Anvil, wallet: LocalAccount, tmp_path: Path
) -> None:
    # Given three payouts signed and broadcast, with mining stopped
    with sqlite_engine(tmp_path) as engine:
        transactions = ChainTransactions(engine, SystemClock())
        anvil.automine(False)
        provider = provider_for(anvil, wallet, transactions)
        payouts = [new_payout() for _ in range(3)]
        for payout in payouts:
            provider.payout(payout, idempotency_key="k")
    env = cli_env(
        PAYMQ_DATABASE_URL=f"sqlite:///{tmp_path / 'paymq.db'}",
        PAYMQ_ETHEREUM_RPC_URL=anvil.url,
        PAYMQ_ETHEREUM_PRIVATE_KEY="0x" + bytes(wallet.key).hex(),
    )

    def status() -> dict[str, Any]:
        completed = run_cli("chain", "status", "--json", env=env, cwd=tmp_path, timeout_s=60)
        assert completed.returncode == 0, completed.stderr[-2000:]
        parsed: dict[str, Any] = json.loads(completed.stdout)
        return parsed

    # When an operator asks, then again once a block is mined
    waiting = status()
    anvil.mine(1)
    mined = status()

    # Then the first answer lists them oldest first, the second none
    assert waiting["address"] == wallet.address
    assert (waiting["store_next_nonce"], waiting["node_mined_nonce"]) == (3, 0)
    assert waiting["unmined"] == 3
    assert [tx["nonce"] for tx in waiting["unmined_transactions"]] == [0, 1, 2]
    assert {tx["payment_id"] for tx in waiting["unmined_transactions"]} == {
        p.reference for p in payouts
    }
    assert all(tx["in_node_pool"] for tx in waiting["unmined_transactions"])
    assert waiting["oldest_unmined_age_s"] is not None
    assert (mined["unmined"], mined["node_mined_nonce"]) == (0, 3)
    assert mined["oldest_unmined_age_s"] is None
    # ...and never the key
    assert bytes(wallet.key).hex() not in json.dumps(waiting).lower()

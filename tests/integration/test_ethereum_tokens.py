"""ERC-20 payouts (USDC-style `transfer`) against a real token contract on anvil: compiled from
tools/paymq_tools/contracts/PaymqTestToken.sol by solc-js, 6 decimals like USDC, with USDC's
blocklist and, for the check that a mined transaction really moved the tokens, a recipient to
which a transfer returns false instead of reverting."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from common.clock import SystemClock
from common.errors import (
    HotWalletUnderfunded,
    NoEffectAtProvider,
    ProviderRejected,
    RetryableError,
    TokenMisconfigured,
)
from common.money import Money
from paymq_tools.devchain import TOKEN_SOURCE, Anvil, Contract, compile_contract, solcjs_path
from store.chain import ChainTransactions
from tests.stores import sqlite_engine
from workers.providers.base import Payout
from workers.providers.ethereum import EthereumConfig, EthereumProvider

pytestmark = pytest.mark.integration

SUPPLY = 1_000_000 * 10**6  # a million dollars, in 6-decimal minor units
AMOUNT = 125_500_000  # 125.50 USDC


@pytest.fixture(scope="session")
def token_artifact(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    if solcjs_path() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and solc-js is not installed (make install runs npm ci)")
        pytest.skip("solc-js is not installed: make install (npm ci)")
    return compile_contract(TOKEN_SOURCE, "PaymqTestToken", tmp_path_factory.mktemp("solc"))


@pytest.fixture
def issuer(anvil: Anvil) -> LocalAccount:
    account: LocalAccount = Account.create()
    anvil.fund(account.address, 10 * 10**18)
    return account


@pytest.fixture
def wallet(anvil: Anvil) -> LocalAccount:
    account: LocalAccount = Account.create()
    anvil.fund(account.address, 10 * 10**18)
    return account


class Token:
    def __init__(self, anvil: Anvil, artifact: Contract, issuer: LocalAccount, address: str):
        self.address = address
        self._anvil = anvil
        self._issuer = issuer
        self._contract = Web3(Web3.HTTPProvider(anvil.url)).eth.contract(
            address=address,  # type: ignore[arg-type]
            abi=artifact.abi,
        )

    def balance(self, account: str) -> int:
        return int(self._contract.functions.balanceOf(account).call())

    def issuer_calls(self, function: str, *args: Any) -> None:
        data = bytes.fromhex(self._contract.encode_abi(function, list(args))[2:])
        self._anvil.transact(self._issuer, to=self.address, data=data)


def deploy_token(
    anvil: Anvil, artifact: Contract, issuer: LocalAccount, holder: str, decimals: int = 6
) -> Token:
    address = anvil.deploy(
        issuer, artifact, ["uint8", "address", "uint256"], [decimals, holder, SUPPLY]
    )
    return Token(anvil, artifact, issuer, address)


@pytest.fixture
def transactions(tmp_path: Path) -> Iterator[ChainTransactions]:
    with sqlite_engine(tmp_path) as engine:
        yield ChainTransactions(engine, SystemClock())


def provider_for(
    anvil: Anvil, wallet: LocalAccount, token: Token, transactions: ChainTransactions
) -> EthereumProvider:
    config = EthereumConfig(
        rpc_url=anvil.url,
        private_key="0x" + bytes(wallet.key).hex(),
        network="ethereum-devnet",
        chain_id=31337,
        confirmations=2,
        max_fee_per_gas_wei=200 * 10**9,
        max_priority_fee_per_gas_wei=2 * 10**9,
        rpc_timeout_s=5.0,
        tokens={"USDC": token.address},
    )
    return EthereumProvider(config, transactions)


def usdc_payout(recipient: str, amount: int = AMOUNT) -> Payout:
    return Payout(
        reference=str(uuid.uuid4()),
        amount=Money(amount_minor=amount, currency="USDC"),
        network="ethereum-devnet",
        asset="USDC",
        destination_address=recipient,
    )


def test_a_usdc_payout_calls_the_token_and_succeeds_after_its_confirmations(
    anvil: Anvil,
    token_artifact: Contract,
    issuer: LocalAccount,
    wallet: LocalAccount,
    transactions: ChainTransactions,
) -> None:
    token = deploy_token(anvil, token_artifact, issuer, wallet.address)
    provider = provider_for(anvil, wallet, token, transactions)
    recipient = Account.create().address
    payout = usdc_payout(recipient)

    pending = provider.payout(payout, idempotency_key="k")
    again = provider.payout(payout, idempotency_key="k")  # a redelivery: the same transaction
    anvil.mine(1)
    settled = provider.lookup("digital_currency", payout.reference)

    assert not pending.settled
    assert again.reference == pending.reference
    assert settled is not None
    assert settled.settled
    assert token.balance(recipient) == AMOUNT
    assert token.balance(wallet.address) == SUPPLY - AMOUNT
    assert anvil.balance(recipient) == 0  # tokens, not ether
    assert len(anvil.transactions_from(wallet.address)) == 1


def test_a_recipient_the_issuer_blocked_fails_before_anything_is_signed(
    anvil: Anvil,
    token_artifact: Contract,
    issuer: LocalAccount,
    wallet: LocalAccount,
    transactions: ChainTransactions,
) -> None:
    token = deploy_token(anvil, token_artifact, issuer, wallet.address)
    recipient = Account.create().address
    token.issuer_calls("blockAccount", recipient)
    provider = provider_for(anvil, wallet, token, transactions)
    payout = usdc_payout(recipient)

    with pytest.raises(ProviderRejected) as rejected:
        provider.payout(payout, idempotency_key="k")

    assert rejected.value.code == "token_transfer_refused"
    assert "blocked" in str(rejected.value)
    assert transactions.find(payout.reference) is None


def test_a_mined_transfer_the_token_did_not_log_fails_with_nothing_moved(
    anvil: Anvil,
    token_artifact: Contract,
    issuer: LocalAccount,
    wallet: LocalAccount,
    transactions: ChainTransactions,
) -> None:
    # Given a token that returns false for this recipient instead of reverting
    token = deploy_token(anvil, token_artifact, issuer, wallet.address)
    recipient = Account.create().address
    token.issuer_calls("makeSilent", recipient)
    provider = provider_for(anvil, wallet, token, transactions)
    payout = usdc_payout(recipient)

    # When the transaction is mined with status 1
    receipt = provider.payout(payout, idempotency_key="k")
    anvil.mine(2)
    mined = anvil.receipt(receipt.reference)
    assert mined is not None
    assert mined["status"] == "0x1"

    # Then the payout failed: the token's own Transfer event is what says tokens moved
    with pytest.raises(NoEffectAtProvider) as failed:
        provider.lookup("digital_currency", payout.reference)
    assert failed.value.code == "transfer_not_made"
    assert token.balance(recipient) == 0


@pytest.mark.parametrize(
    ("decimals", "held", "error"),
    [(18, SUPPLY, TokenMisconfigured), (6, AMOUNT - 1, HotWalletUnderfunded)],
    ids=["token-decimals-differ", "wallet-lacks-tokens"],
)
def test_nothing_is_signed_for_a_token_payout_that_cannot_go(
    anvil: Anvil,
    token_artifact: Contract,
    issuer: LocalAccount,
    wallet: LocalAccount,
    transactions: ChainTransactions,
    decimals: int,
    held: int,
    error: type[RetryableError],
) -> None:
    token = deploy_token(anvil, token_artifact, issuer, issuer.address, decimals=decimals)
    token.issuer_calls("transfer", wallet.address, held)
    provider = provider_for(anvil, wallet, token, transactions)
    payout = usdc_payout(Account.create().address)

    with pytest.raises(error):
        provider.payout(payout, idempotency_key="k")

    assert transactions.find(payout.reference) is None
    assert anvil.nonce(wallet.address) == 0

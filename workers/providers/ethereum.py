"""Digital-currency payouts on an Ethereum chain: ETH or an ERC-20 token from a hot wallet,
through a node's JSON-RPC API (ethereum_node.py), signed locally (eth-account), once the
checks before signing (ethereum_preflight.py) pass. docs/ethereum.md explains the design.

Exactly once on chain:
- Before anything is signed, the node must report the configured chain id, the fees must fit
  under the cap and the wallet must hold the payout and its fee; any of these failing is
  retryable, since nothing exists yet that could move money.
- Signing takes the wallet's next nonce from the store and stores the signed bytes and hash in
  the same database transaction (store/chain.py), before the first broadcast.
- From then on the payment has exactly one transaction. Every later attempt, redelivery or
  reconciler check broadcasts those same bytes again or looks their hash up; nothing signs a
  second one. A refused broadcast ("already known", "nonce too low", anything) is answered by
  looking our own transaction up, never by reading the node's message.
- The payout is `pending` once the node holds the transaction and `succeeded` after
  `ethereum_confirmations` blocks; the reconciler counts them. It is `failed` only when the
  chain shows it moved nothing: reverted, its nonce taken by another transaction, or (a token)
  no Transfer event of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_typing import ChecksumAddress
from hexbytes import HexBytes

from common.errors import (
    ConfigurationError,
    HotWalletUnderfunded,
    NoEffectAtProvider,
    ProviderUnavailable,
    SignedTransactionInDoubt,
    StoreUnavailable,
    TransactionNotAccepted,
)
from store.chain import ChainTransactions, SignedTransaction, StoredTransaction
from workers.crashpoints import NEVER, CrashPoints
from workers.providers.base import Payout, ProviderReceipt
from workers.providers.ethereum_node import EthereumNode
from workers.providers.ethereum_preflight import Preflight
from workers.providers.ethereum_rules import (
    ChainFacts,
    Verdict,
    fees_for,
    gas_limit,
    judge,
    token_transfer_of,
    transfer_logged,
)

__all__ = ["EthereumConfig", "EthereumProvider"]

NAME = "ethereum"
logger = logging.getLogger("paymq.providers.ethereum")


@dataclass(frozen=True)
class EthereumConfig:
    """What the provider is configured with (common/settings/ethereum.py)."""

    rpc_url: str
    private_key: str = field(repr=False)
    network: str
    chain_id: int
    confirmations: int
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int
    rpc_timeout_s: float = 10.0
    #: ERC-20 payouts: asset code -> token contract address.
    tokens: Mapping[str, str] = field(default_factory=dict)


class EthereumProvider:
    name = NAME

    def __init__(
        self,
        config: EthereumConfig,
        transactions: ChainTransactions,
        *,
        crash: CrashPoints = NEVER,
    ) -> None:
        self._account = hot_wallet(config.private_key)
        self._node = EthereumNode(config.rpc_url, timeout_s=config.rpc_timeout_s)
        self._preflight = Preflight(
            self._node,
            self._account.address,
            network=config.network,
            chain_id=config.chain_id,
            tokens=config.tokens,
        )
        self._chain_id = config.chain_id
        self._confirmations = config.confirmations
        self._max_fee_wei = config.max_fee_per_gas_wei
        self._max_tip_wei = config.max_priority_fee_per_gas_wei
        self._transactions = transactions
        #: Fault injection only: the process may die between storing and broadcasting.
        self._crash = crash

    @property
    def address(self) -> ChecksumAddress:
        """The hot wallet's address (checksummed)."""
        return self._account.address

    def payout(self, payout: Payout, *, idempotency_key: str) -> ProviderReceipt:
        stored = self._transactions.find(payout.reference)
        if stored is None:
            stored = self._sign(payout)
            self._crash.reached("after_transaction_stored", payout.reference)
        else:
            # A redelivery: its transaction exists and may land, so a node on the wrong chain
            # is an unknown outcome here, never a reason to fail the payout.
            try:
                self._preflight.check_chain()
            except ProviderUnavailable as exc:
                raise TransactionNotAccepted(
                    f"transaction {stored.tx_hash} not sent again: {exc}"
                ) from exc
        return self._receipt(stored, self._broadcast(stored))

    def lookup(self, channel: str, reference: str) -> ProviderReceipt | None:
        """What the chain says of the payment's transaction; None when none was ever signed.
        A transaction the node no longer knows whose nonce is still free is broadcast again
        (the same bytes). Raises NoEffectAtProvider when it moved nothing."""
        if channel != "digital_currency":
            raise ValueError(f"the ethereum provider has no {channel} payments")
        stored = self._transactions.find(reference)
        if stored is None:
            return None
        self._preflight.check_chain()
        judgement = judge(
            self._facts(stored), nonce=stored.nonce, confirmations_required=self._confirmations
        )
        if judgement.verdict is Verdict.UNKNOWN:
            logger.warning(
                "payment %s: transaction %s (nonce %d) unknown to the node; broadcasting it again",
                reference,
                stored.tx_hash,
                stored.nonce,
            )
            return self._receipt(stored, self._broadcast(stored))
        return self._receipt(stored, judgement.verdict, judgement.confirmations)

    def close(self) -> None:
        self._node.close()
        self._transactions.close()

    # --- before signing: nothing exists yet that could move money (ethereum_preflight.py) ----

    def _sign(self, payout: Payout) -> StoredTransaction:
        self._preflight.check_payable(payout)
        self._preflight.check_chain()
        call = self._preflight.call_for(payout)
        gas = gas_limit(self._preflight.estimate_gas(call, token=payout.asset != "ETH"))
        fees = fees_for(
            self._node.base_fee_wei(),
            self._node.suggested_tip_wei(),
            max_fee_cap_wei=self._max_fee_wei,
            max_tip_cap_wei=self._max_tip_wei,
        )
        balance_wei = self._node.balance_wei(self.address)
        if balance_wei < call["value"] + gas * fees.max_fee_per_gas_wei:
            raise HotWalletUnderfunded(
                f"hot wallet {self.address} holds {balance_wei} wei; the payout needs "
                f"{call['value']} wei and up to {gas * fees.max_fee_per_gas_wei} wei of fees"
            )
        transaction: dict[str, Any] = {
            "type": 2,
            "chainId": self._chain_id,
            "to": call["to"],
            "value": call["value"],
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas_wei,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas_wei,
            "data": call.get("data", b""),
        }

        def sign(nonce: int) -> SignedTransaction:
            signed = self._account.sign_transaction({**transaction, "nonce": nonce})
            return SignedTransaction(_hex(signed.hash), bytes(signed.raw_transaction))

        nonce_floor = self._node.transaction_count(self.address, pending=True)
        try:
            stored = self._transactions.sign_and_store(
                payout.reference,
                chain_id=self._chain_id,
                address=self.address,
                nonce_floor=nonce_floor,
                sign=sign,
            )
        except StoreUnavailable as exc:
            # The commit may have happened (only its answer lost): a stored transaction must
            # be broadcast one day, or its nonce would hold back every later payout.
            raise SignedTransactionInDoubt(
                f"the store failed while storing the payout's signed transaction ({exc})"
            ) from exc
        logger.info(
            "payment %s: signed transaction %s, nonce %d, %d %s minor units",
            payout.reference,
            stored.tx_hash,
            stored.nonce,
            payout.amount.amount_minor,
            payout.asset,
        )
        return stored

    # --- after signing: the transaction exists and may land; never failed on a guess ---------

    def _broadcast(self, stored: StoredTransaction) -> Verdict:
        refusal = self._node.send_raw(stored.raw_tx)
        if refusal is None:
            return Verdict.WAITING
        # Already known, nonce too low, a lost answer, a refusal: our own transaction says.
        try:
            facts = self._facts(stored)
        except ProviderUnavailable as exc:
            raise TransactionNotAccepted(
                f"broadcast of {stored.tx_hash} unanswered ({refusal}); it may be in flight"
            ) from exc
        judgement = judge(facts, nonce=stored.nonce, confirmations_required=self._confirmations)
        if judgement.verdict is Verdict.UNKNOWN:
            raise TransactionNotAccepted(
                f"the node did not take transaction {stored.tx_hash}: {refusal}; "
                "it is broadcast again later"
            )
        return judgement.verdict

    def _facts(self, stored: StoredTransaction) -> ChainFacts:
        # The wallet's count of mined transactions first (see ChainFacts).
        wallet_nonce = self._node.transaction_count(self.address, pending=False)
        mined = self._node.mined(stored.tx_hash)
        if mined is None:
            return ChainFacts(wallet_nonce=wallet_nonce, in_pool=self._node.knows(stored.tx_hash))
        logged = None
        if mined.status == 1:
            signed = TypedTransaction.from_bytes(HexBytes(stored.raw_tx)).as_dict()
            transfer = token_transfer_of(_hex(signed["to"]), bytes(signed["data"]))
            if transfer is not None:  # a token's transfer: did the token log it?
                logged = transfer_logged(mined.logs, transfer, stored.address)
        return ChainFacts(
            wallet_nonce=wallet_nonce,
            receipt_status=mined.status,
            receipt_block=mined.block,
            latest_block=self._node.block_number(),
            transfer_logged=logged,
        )

    def _receipt(
        self, stored: StoredTransaction, verdict: Verdict, confirmations: int = 0
    ) -> ProviderReceipt:
        moved_nothing = {
            Verdict.REVERTED: ("reverted", "reverted: no value moved"),
            Verdict.NO_TRANSFER: (
                "transfer_not_made",
                "was mined but the token logged no transfer: nothing moved",
            ),
            Verdict.REPLACED: (
                "dropped_and_replaced",
                f"was dropped and its nonce {stored.nonce} used by another transaction: "
                "no value moved",
            ),
        }
        if verdict in moved_nothing:
            code, what = moved_nothing[verdict]
            raise NoEffectAtProvider(f"transaction {stored.tx_hash} {what}", code=code)
        if verdict is Verdict.CONFIRMING:
            logger.info(
                "payment %s: %d of %d confirmations",
                stored.payment_id,
                confirmations,
                self._confirmations,
            )
        return ProviderReceipt(
            provider=NAME, reference=stored.tx_hash, settled=verdict is Verdict.CONFIRMED
        )


def hot_wallet(private_key: str) -> LocalAccount:
    """The hot wallet of a private key; ConfigurationError, never echoing it, if it is not one."""
    try:
        account: LocalAccount = Account.from_key(private_key)
    except (ValueError, TypeError):
        # Never echo the key, not even a wrong one: eth-account's error may quote it, so it is
        # not kept as the cause either.
        raise ConfigurationError(
            "the ethereum hot wallet key is not a private key (0x + 64 hex digits)"
        ) from None
    return account


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()

"""Before a payout is signed: can this worker pay it, on the chain configured, to a
destination and through a token that take it? Nothing exists yet that could move money, so
every failure here is a refusal (ProviderRejected: the payout fails) or retryable
(ProviderUnavailable and its kinds). The node's answers (ethereum_node.py) become our errors
here, keeping the node's as their cause.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.address import is_checksum_address

from common.errors import (
    ChainIdMismatch,
    HotWalletUnderfunded,
    ProviderRejected,
    TokenMisconfigured,
)
from common.money import currency_exponent
from workers.providers.base import Payout
from workers.providers.ethereum_node import CallReverted, CannotAfford, EthereumNode
from workers.providers.ethereum_rules import transfer_call

logger = logging.getLogger("paymq.providers.ethereum")


class Preflight:
    """The checks before signing, for one hot wallet on one network. The chain id is asked
    once, and each token's decimals once, for the provider's life."""

    def __init__(
        self,
        node: EthereumNode,
        address: ChecksumAddress,
        *,
        network: str,
        chain_id: int,
        tokens: Mapping[str, str],
    ) -> None:
        self._node = node
        #: The hot wallet's address (checksummed).
        self.address = address
        self._network = network
        self._chain_id = chain_id
        self._tokens = dict(tokens)
        self._tokens_checked: set[str] = set()
        self._chain_checked = False

    def check_payable(self, payout: Payout) -> None:
        if payout.network != self._network:
            raise ProviderRejected(
                f"this worker pays out on {self._network}, not {payout.network}",
                code="network_not_served",
            )
        if payout.asset != "ETH" and payout.asset not in self._tokens:
            raise ProviderRejected(
                f"{payout.asset} payouts are not configured (ethereum_tokens)",
                code="asset_not_supported",
            )
        if not is_checksum_address(payout.destination_address):
            raise ProviderRejected("destination address fails its checksum", code="bad_address")

    def call_for(self, payout: Payout) -> dict[str, Any]:
        """What the transaction calls: a plain transfer of ETH, or the token's `transfer`."""
        amount = payout.amount.amount_minor
        if payout.asset == "ETH":
            return {"from": self.address, "to": payout.destination_address, "value": amount}
        token = self._tokens[payout.asset]
        self._check_token(token, payout.asset)
        held = self._node.token_balance(token, self.address)
        if held < amount:
            raise HotWalletUnderfunded(
                f"hot wallet {self.address} holds {held} of the {payout.asset} token's minor "
                f"units; the payout needs {amount}"
            )
        data = transfer_call(payout.destination_address, amount)
        return {"from": self.address, "to": token, "value": 0, "data": data}

    def _check_token(self, token: str, asset: str) -> None:
        """The token's decimals must be the asset's exponent, or every amount would be off by
        powers of ten: checked once per token before its first payout."""
        if token in self._tokens_checked:
            return
        decimals, exponent = self._node.token_decimals(token), currency_exponent(asset)
        if decimals != exponent:
            logger.error("token %s has %d decimals; %s has %d", token, decimals, asset, exponent)
            raise TokenMisconfigured(
                f"the {asset} token at {token} has {decimals} decimals, {asset} amounts have "
                f"{exponent}; nothing is signed until ethereum_tokens is fixed"
            )
        self._tokens_checked.add(token)

    def check_chain(self) -> None:
        if self._chain_checked:
            return
        reported = self._node.chain_id()
        if reported != self._chain_id:
            logger.error("the node reports chain id %d, configured %d", reported, self._chain_id)
            raise ChainIdMismatch(
                f"the node reports chain id {reported}, not the configured {self._chain_id} "
                f"({self._network}); nothing is signed until they agree"
            )
        self._chain_checked = True

    def estimate_gas(self, call: dict[str, Any], *, token: bool) -> int:
        try:
            return self._node.estimate_gas(call)
        except CallReverted as exc:
            if token:  # e.g. a recipient the token's issuer has blocked
                raise ProviderRejected(
                    f"the token refuses the transfer: {exc}", code="token_transfer_refused"
                ) from exc
            raise ProviderRejected(
                f"the destination refuses the transfer: {exc}",
                code="destination_refuses_transfer",
            ) from exc
        except CannotAfford as exc:
            raise HotWalletUnderfunded(
                f"hot wallet {self.address} cannot cover the payout"
            ) from exc

"""The ethereum section of the settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from common.details import EVM_CHAIN_IDS, Network
from common.money import DIGITAL_ASSETS
from common.settings.section import (
    PositiveFloat,
    PositiveInt,
    Section,
    read_secret_file,
    readers,
)

#: The chain id anvil and Hardhat start with: the default of the ethereum-devnet network.
ANVIL_CHAIN_ID = 31337


class EthereumSettings(Section):
    """The ethereum provider: its node, its network, its hot wallet, its tokens and its fee caps."""

    heading = "Ethereum provider"
    read_by = ("worker", "reconciler")

    ethereum_rpc_url: str = Field(
        "http://127.0.0.1:8545",
        pattern=r"^https?://",
        description="JSON-RPC URL of the Ethereum node the ethereum provider uses (a local "
        "anvil or geth, or a provider's URL for a real network).",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    ethereum_network: Network = Field(
        "ethereum-devnet",
        description="The network the ethereum provider pays out on; a payout naming another "
        "network fails without a transaction.",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    ethereum_chain_id: PositiveInt | None = Field(
        None,
        description="The chain id the node must report before anything is signed; every "
        "transaction is signed for it (EIP-155). Default: the network's (1 ethereum, "
        "11155111 ethereum-sepolia, 31337 ethereum-devnet, anvil's).",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    ethereum_private_key: SecretStr | None = Field(
        None,
        description="The hot wallet's private key (0x + 64 hex digits). Never logged. Prefer "
        "ethereum_private_key_file.",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    ethereum_private_key_file: Path | None = Field(
        None,
        description="A file holding the hot wallet's private key (a Docker or Kubernetes "
        "secret); used when ethereum_private_key is not set.",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    ethereum_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="ERC-20 payouts: asset code -> token contract address (EIP-55), e.g. "
        '{"USDC":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"} on ethereum. The token\'s '
        "decimals are checked against the asset's before its first payout. Default: ETH only.",
    )
    ethereum_confirmations: PositiveInt = Field(
        12,
        description="Blocks that must include or follow a payout's transaction before it is "
        "succeeded; until then it is pending.",
    )
    ethereum_max_fee_per_gas_wei: PositiveInt = Field(
        200_000_000_000,
        description="EIP-1559 fee cap (200 gwei): a payout is not signed while the base fee "
        "plus tip would exceed it; it waits in the retry tiers instead.",
    )
    ethereum_max_priority_fee_per_gas_wei: PositiveInt = Field(
        2_000_000_000,
        description="Cap of the tip to block producers (2 gwei); the node's suggestion is "
        "used below it.",
    )
    ethereum_rpc_timeout_s: PositiveFloat = Field(
        10.0,
        description="Timeout of each JSON-RPC call to the node.",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )

    @field_validator("ethereum_tokens")
    @classmethod
    def _known_tokens(cls, tokens: dict[str, str]) -> dict[str, str]:
        from eth_utils.address import is_checksum_address  # noqa: PLC0415

        for asset, address in tokens.items():
            if asset == "ETH" or asset not in DIGITAL_ASSETS:
                known = ", ".join(a for a in DIGITAL_ASSETS if a != "ETH")
                raise ValueError(f"{asset!r} is not a token asset ({known})")
            if not is_checksum_address(address):
                raise ValueError(f"the {asset} token address must be EIP-55 checksummed")
        return tokens

    def wallet_key(self) -> str | None:
        """The hot wallet's private key, from the setting or its file."""
        if self.ethereum_private_key is not None:
            return self.ethereum_private_key.get_secret_value().strip() or None
        if self.ethereum_private_key_file is not None:
            return read_secret_file(
                self.ethereum_private_key_file, "PAYMQ_ETHEREUM_PRIVATE_KEY_FILE"
            )
        return None

    def expected_chain_id(self) -> int:
        """The configured chain id, or the network's own (Settings refuses a contradiction)."""
        if self.ethereum_chain_id is not None:
            return self.ethereum_chain_id
        known = EVM_CHAIN_IDS[self.ethereum_network]
        return known if known is not None else ANVIL_CHAIN_ID

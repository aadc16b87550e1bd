"""Channel-specific payment details: one model per channel, a discriminated union on `type`.

The `type` of the details *is* the payment's channel (and its routing key). To add a channel, add
its details model here and to `PaymentDetails`, then its worker module in `workers/channels/`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)

Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=4096)]


class CardToken(BaseModel):
    """A card the provider already holds, referred to by its token (preferred: no PAN travels)."""

    model_config = _FROZEN

    type: Literal["token"] = "token"
    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,255}$")]


class SealedCard(BaseModel):
    """Card data encrypted for the card workers only (X25519, HKDF-SHA256, AES-256-GCM: see
    docs/protocol.md#card-data-sealing). Nothing here reveals the card number."""

    model_config = _FROZEN

    type: Literal["sealed"] = "sealed"
    #: Required, so a future algorithm can never be mistaken for this one.
    alg: Literal["HPKE-X25519-SHA256-A256GCM+A256GCM"]
    kid: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")]
    #: HPKE output (32-byte encapsulated key + the wrapped 32-byte data key + 16-byte tag), base64.
    wrapped_key: Base64
    #: 12-byte AES-GCM nonce, base64.
    nonce: Base64
    #: AES-256-GCM ciphertext and tag of the card data JSON, base64.
    ciphertext: Base64


CardSource = Annotated[CardToken | SealedCard, Field(discriminator="type")]


class CardDetails(BaseModel):
    model_config = _FROZEN

    type: Literal["card"] = "card"
    source: CardSource


Network = Literal["ethereum", "ethereum-sepolia", "ethereum-devnet"]

#: The EVM networks and the chain id (EIP-155) each is; a development network (anvil, a geth
#: dev node) has whatever id its node is started with.
EVM_CHAIN_IDS: dict[str, int | None] = {
    "ethereum": 1,
    "ethereum-sepolia": 11155111,
    "ethereum-devnet": None,
}


class DigitalCurrencyDetails(BaseModel):
    """A payout of `amount` (in the asset's minor units) to an address on a network."""

    model_config = _FROZEN

    type: Literal["digital_currency"] = "digital_currency"
    network: Network
    asset: Literal["ETH", "USDC"]
    #: In its EIP-55 checksum form, so a mistyped address is refused, not paid.
    destination_address: Annotated[
        str,
        Field(
            pattern=r"^0x[0-9a-fA-F]{40}$",
            description="In its EIP-55 checksum form (an address whose hex digits hold no "
            "letter is its own checksum form); the zero address is refused.",
        ),
    ]

    @field_validator("destination_address")
    @classmethod
    def _checksummed(cls, address: str) -> str:
        # Imported here: only payouts pay for it (keccak, from eth-utils).
        from eth_utils.address import is_checksum_address  # noqa: PLC0415

        if not is_checksum_address(address):
            raise ValueError(
                "destination_address must be in its EIP-55 checksum form: "
                "without the checksum a mistyped address cannot be told from a real one"
            )
        if int(address, 16) == 0:
            raise ValueError("destination_address is the zero address: what it receives is lost")
        return address


PaymentDetails = Annotated[CardDetails | DigitalCurrencyDetails, Field(discriminator="type")]

#: Every channel name, in a stable order.
CHANNELS: tuple[str, ...] = ("card", "digital_currency")

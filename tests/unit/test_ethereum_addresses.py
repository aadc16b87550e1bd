"""Payout destinations must be EIP-55 checksummed, non-zero addresses; a bad hot wallet key is
a configuration error that never echoes the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.details import DigitalCurrencyDetails
from common.errors import ConfigurationError
from workers.providers.ethereum import hot_wallet

#: The EIP-55 specification's own examples.
CHECKSUMMED = (
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
)
ZERO_ADDRESS = "0x" + "0" * 40


def payout(address: str, network: str = "ethereum") -> DigitalCurrencyDetails:
    return DigitalCurrencyDetails.model_validate(
        {"network": network, "asset": "ETH", "destination_address": address}
    )


def flip_first_letter(address: str) -> str:
    """The address with the case of its first hex letter (after 0x) flipped."""
    body = address[2:]
    index = next(i for i, char in enumerate(body) if char.isalpha())
    return "0x" + body[:index] + body[index].swapcase() + body[index + 1 :]


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_a_checksummed_address_is_accepted(address: str) -> None:
    assert payout(address).destination_address == address


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_the_all_lowercase_address_is_refused(address: str) -> None:
    with pytest.raises(ValidationError, match="EIP-55"):
        payout(address.lower())


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_an_address_with_one_letters_case_flipped_is_refused(address: str) -> None:
    mistyped = flip_first_letter(address)
    assert mistyped != address
    assert mistyped.lower() == address.lower()
    with pytest.raises(ValidationError, match="EIP-55"):
        payout(mistyped)


def test_the_zero_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="zero address"):
        payout(ZERO_ADDRESS)


@pytest.mark.parametrize(
    "address", ["0x1234", CHECKSUMMED[0] + "00", CHECKSUMMED[0][2:], "0x" + "g" * 40]
)
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(ValidationError, match="destination_address"):
        payout(address)


def test_the_devnet_is_a_payout_network() -> None:
    details = payout(CHECKSUMMED[1], network="ethereum-devnet")
    assert details.network == "ethereum-devnet"
    assert details.destination_address == CHECKSUMMED[1]


def test_an_unknown_network_is_refused() -> None:
    with pytest.raises(ValidationError, match="network"):
        payout(CHECKSUMMED[0], network="bitcoin")


# --- the hot wallet key ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["0x1234", "0x" + "00" * 32])
def test_a_bad_hot_wallet_key_is_a_configuration_error_that_hides_it(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        hot_wallet(key)
    assert key not in str(caught.value)
    assert key[2:] not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_good_hot_wallet_key_gives_its_account() -> None:
    # Anvil's first development account: a well-known test key, not a secret.
    key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    assert hot_wallet(key).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

"""The ethereum provider's settings: the chain id it expects and its hot wallet key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.errors import ConfigurationError
from common.settings import Settings

#: Anvil's first development account: a well-known test key, not a secret.
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the developer's shell reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMQ_") or name.upper() in ("AMQP_URL", "RABBITMQ_URL"):
            monkeypatch.delenv(name)


def load(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


# --- expected_chain_id ---------------------------------------------------------------------


def test_the_default_network_is_the_devnet_with_anvils_chain_id() -> None:
    settings = load()
    assert settings.ethereum.ethereum_network == "ethereum-devnet"
    assert settings.ethereum.expected_chain_id() == 31337


@pytest.mark.parametrize(("network", "chain_id"), [("ethereum", 1), ("ethereum-sepolia", 11155111)])
def test_a_public_network_expects_its_own_chain_id(network: str, chain_id: int) -> None:
    assert load(ethereum_network=network).ethereum.expected_chain_id() == chain_id


def test_the_devnet_takes_the_configured_chain_id() -> None:
    settings = load(ethereum_network="ethereum-devnet", ethereum_chain_id=1337)
    assert settings.ethereum.expected_chain_id() == 1337


def test_a_public_network_accepts_its_own_chain_id_when_configured() -> None:
    assert load(ethereum_network="ethereum", ethereum_chain_id=1).ethereum.expected_chain_id() == 1


def test_a_chain_id_contradicting_the_network_is_refused_at_start_up() -> None:
    with pytest.raises(
        ValidationError, match=r"ethereum_chain_id 5 is not ethereum \(chain id 1\)"
    ):
        load(ethereum_network="ethereum", ethereum_chain_id=5)


# --- wallet_key ------------------------------------------------------------------------------


def test_the_key_is_read_from_the_setting() -> None:
    assert load(ethereum_private_key=KEY).ethereum.wallet_key() == KEY


def test_the_key_is_read_from_its_file_without_the_trailing_newline(tmp_path: Path) -> None:
    key_file = tmp_path / "ethereum_key"
    key_file.write_text(KEY + "\n")
    assert load(ethereum_private_key_file=key_file).ethereum.wallet_key() == KEY


def test_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "ethereum_key"
    key_file.write_text("0x" + "11" * 32 + "\n")
    settings = load(ethereum_private_key=KEY, ethereum_private_key_file=key_file)
    assert settings.ethereum.wallet_key() == KEY


def test_an_unreadable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key"
    with pytest.raises(ConfigurationError, match="PAYMQ_ETHEREUM_PRIVATE_KEY_FILE") as caught:
        load(ethereum_private_key_file=missing).ethereum.wallet_key()
    assert KEY not in str(caught.value)
    assert str(missing) in str(caught.value)


def test_a_key_file_that_is_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load(ethereum_private_key_file=tmp_path).ethereum.wallet_key()


def test_no_key_configured_is_none() -> None:
    assert load().ethereum.wallet_key() is None


def test_the_key_is_never_shown_by_repr_or_str() -> None:
    settings = load(ethereum_private_key=KEY)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)
    assert KEY[2:] not in repr(settings)
    assert KEY[2:] not in str(settings)


def test_the_key_read_from_the_environment_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMQ_ETHEREUM_PRIVATE_KEY", KEY)
    settings = load()
    assert settings.ethereum.wallet_key() == KEY
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


# --- ethereum_rpc_url ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8545", "https://node.example/v3/abc"])
def test_an_http_rpc_url_is_accepted(url: str) -> None:
    assert load(ethereum_rpc_url=url).ethereum.ethereum_rpc_url == url


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8546", "127.0.0.1:8545", "ftp://node.example", "", "HTTPX://a"]
)
def test_a_non_http_rpc_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="ethereum_rpc_url"):
        load(ethereum_rpc_url=url)


def test_token_payouts_name_a_token_asset_and_a_checksummed_contract() -> None:
    usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    assert load(ethereum_tokens={"USDC": usdc}).ethereum.ethereum_tokens == {"USDC": usdc}
    with pytest.raises(ValidationError, match="not a token asset"):
        load(ethereum_tokens={"ETH": usdc})
    with pytest.raises(ValidationError, match="not a token asset"):
        load(ethereum_tokens={"DOGE": usdc})
    with pytest.raises(ValidationError, match="checksummed"):
        load(ethereum_tokens={"USDC": usdc.lower()})

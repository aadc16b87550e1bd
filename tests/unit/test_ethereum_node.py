"""web3's failures translated at the node's edge (workers/providers/ethereum_node.py): each to
the most specific of our errors, with web3's (or requests') error kept as its cause."""

from __future__ import annotations

import socket

import pytest
import requests
from web3.exceptions import ContractLogicError, Web3RPCError

from common.errors import ProviderUnavailable
from workers.providers.ethereum_node import (
    CallReverted,
    CannotAfford,
    EthereumNode,
    node_errors,
)


def test_a_node_that_does_not_answer_is_unavailable_with_the_network_error_as_cause() -> None:
    refused = requests.ConnectionError("connection refused")
    with (
        pytest.raises(ProviderUnavailable, match="node read failed") as caught,
        node_errors("node read"),
    ):
        raise refused
    assert caught.value.__cause__ is refused


def test_a_node_error_is_unavailable_with_the_nodes_message_and_its_error_as_cause() -> None:
    refused = Web3RPCError("header not found")
    with (
        pytest.raises(ProviderUnavailable, match="header not found") as caught,
        node_errors("node read"),
    ):
        raise refused
    assert caught.value.__cause__ is refused


def test_a_gas_estimate_that_would_revert_is_a_revert_with_the_nodes_error_as_cause() -> None:
    reverted = ContractLogicError("execution reverted: blocked")
    with (
        pytest.raises(CallReverted, match="blocked") as caught,
        node_errors("gas estimate", estimating=True),
    ):
        raise reverted
    assert caught.value.__cause__ is reverted


def test_a_gas_estimate_the_sender_cannot_pay_for_keeps_the_nodes_error_as_cause() -> None:
    poor = ValueError({"code": -32000, "message": "insufficient funds for gas * price + value"})
    with (
        pytest.raises(CannotAfford) as caught,
        node_errors("gas estimate", estimating=True),
    ):
        raise poor
    assert caught.value.__cause__ is poor


def test_a_revert_outside_a_gas_estimate_is_only_unavailable() -> None:
    with pytest.raises(ProviderUnavailable), node_errors("node read"):
        raise ContractLogicError("execution reverted")


def test_a_read_from_a_node_nobody_listens_at_keeps_requests_error_as_cause() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = EthereumNode(f"http://127.0.0.1:{port}", timeout_s=5.0)
    try:
        with pytest.raises(ProviderUnavailable, match="node read failed") as caught:
            node.chain_id()
    finally:
        node.close()
    assert isinstance(caught.value.__cause__, requests.ConnectionError)

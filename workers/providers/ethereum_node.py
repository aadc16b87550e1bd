"""An Ethereum node over JSON-RPC (web3.py), reduced to what a payout asks of it. Every read
either answers or raises ProviderUnavailable; nothing here decides anything about a payment
(workers/providers/ethereum.py does).

web3's failures (and those of requests, which carries its JSON-RPC) are translated here only,
by `node_errors`, each keeping the original as its cause:

    web3.exceptions.Web3Exception, requests.RequestException, ValueError
    ├── ContractLogicError, estimating gas        -> CallReverted (the call would revert)
    ├── "insufficient funds", estimating gas      -> CannotAfford (the sender cannot pay)
    └── anything else                             -> ProviderUnavailable: nothing was sent

A broadcast's failure is not raised: `send_raw` returns what the node said, for the caller to
look its own transaction up (a refused broadcast may still have reached the pool).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import requests
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

from common.errors import ProviderUnavailable
from workers.providers.ethereum_rules import Log

T = TypeVar("T")
#: Node errors are quoted in reasons, cut to this length.
_MAX_NODE_MESSAGE_CHARS = 200
_NODE_ERRORS = (Web3Exception, requests.RequestException, ValueError)

#: The part of the ERC-20 interface a payout uses.
ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


class CallReverted(Exception):
    """The node says the call would revert (a contract refusing it); its reason is the text."""


class CannotAfford(Exception):
    """The node says the sender cannot pay for the call."""


@dataclass(frozen=True)
class Mined:
    status: int
    block: int
    logs: tuple[Log, ...]


class EthereumNode:
    def __init__(self, rpc_url: str, *, timeout_s: float) -> None:
        self._session = requests.Session()
        self._w3 = Web3(
            Web3.HTTPProvider(
                rpc_url,
                session=self._session,
                request_kwargs={"timeout": timeout_s},
                # paymq's retry policy decides, as for every provider.
                exception_retry_configuration=None,
            )
        )

    def chain_id(self) -> int:
        return int(_read(lambda: self._w3.eth.chain_id))

    def base_fee_wei(self) -> int:
        return int(_read(lambda: self._w3.eth.get_block("latest"))["baseFeePerGas"])

    def suggested_tip_wei(self) -> int:
        return int(_read(lambda: self._w3.eth.max_priority_fee))

    def balance_wei(self, address: str) -> int:
        """Counting the node's pending transactions."""
        return int(_read(lambda: self._w3.eth.get_balance(_address(address), "pending")))

    def transaction_count(self, address: str, *, pending: bool) -> int:
        """The next nonce the node would expect: after its pending transactions, or after the
        mined ones only."""
        block: Literal["pending", "latest"] = "pending" if pending else "latest"
        return int(_read(lambda: self._w3.eth.get_transaction_count(_address(address), block)))

    def block_number(self) -> int:
        return int(_read(lambda: self._w3.eth.block_number))

    def estimate_gas(self, call: dict[str, Any]) -> int:
        """Raises CallReverted or CannotAfford when the node says so."""
        with node_errors("gas estimate", estimating=True):
            return int(self._w3.eth.estimate_gas(call))  # type: ignore[arg-type]

    def send_raw(self, raw_tx: bytes) -> str | None:
        """Broadcast signed bytes: None when the node took them, else what went wrong (its
        answer, or the failure's kind), for the caller to look its transaction up."""
        try:
            self._w3.eth.send_raw_transaction(HexBytes(raw_tx))
        except _NODE_ERRORS as exc:
            return message_of(exc)
        return None

    def mined(self, tx_hash: str) -> Mined | None:
        receipt = _optional(lambda: self._w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        if receipt is None or receipt.get("blockNumber") is None:
            return None
        logs = tuple(
            Log(str(log["address"]), [bytes(t) for t in log["topics"]], bytes(log["data"]))
            for log in receipt["logs"]
        )
        return Mined(int(receipt["status"]), int(receipt["blockNumber"]), logs)

    def knows(self, tx_hash: str) -> bool:
        """Is the transaction in the node's pool (or a block)?"""
        return _optional(lambda: self._w3.eth.get_transaction(tx_hash)) is not None  # type: ignore[arg-type]

    def token_decimals(self, token: str) -> int:
        return int(_read(lambda: self._erc20(token).functions.decimals().call()))

    def token_balance(self, token: str, account: str) -> int:
        return int(_read(lambda: self._erc20(token).functions.balanceOf(_address(account)).call()))

    def close(self) -> None:
        self._session.close()

    def _erc20(self, token: str) -> Any:
        return self._w3.eth.contract(address=_address(token), abi=ERC20_ABI)


def message_of(exc: BaseException) -> str:
    """What a failure says, short: the node's error message, or a network failure's kind."""
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    data = exc.args[0] if exc.args else exc
    if isinstance(data, dict):
        data = data.get("message", data)
    return str(data)[:_MAX_NODE_MESSAGE_CHARS]


def _address(address: str) -> Any:
    return to_checksum_address(address)


@contextlib.contextmanager
def node_errors(doing: str, *, estimating: bool = False) -> Iterator[None]:
    """Translate what web3 raises in the block (see `translated`), keeping it as the cause."""
    try:
        yield
    except _NODE_ERRORS as exc:
        raise translated(exc, doing, estimating=estimating) from exc


def translated(exc: BaseException, doing: str, *, estimating: bool = False) -> Exception:
    """Our error for a failed node call, most specific first. `doing` names the call in the
    reason; `estimating`: the call estimates gas, so the node may say why the call would fail."""
    if estimating and isinstance(exc, ContractLogicError):
        return CallReverted(message_of(exc))
    if estimating and "insufficient funds" in message_of(exc).lower():
        return CannotAfford(message_of(exc))
    return ProviderUnavailable(f"{doing} failed: {message_of(exc)}")


def _read(call: Callable[[], T]) -> T:
    with node_errors("node read"):
        return call()


def _optional(call: Callable[[], T]) -> T | None:
    """A read whose "not found" is an answer (None), not a failure."""
    with node_errors("node read"):
        try:
            return call()
        except TransactionNotFound:
            return None

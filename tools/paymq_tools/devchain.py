"""A local Ethereum node for the demo and the tests: anvil (Foundry), installed from npm by
`make install` (package.json), started on a free port, with the controls a test needs over
mining, balances and the transaction pool (anvil's own JSON-RPC methods); and the demo's
USDC-style token (contracts/PaymqTestToken.sol), compiled by solc-js from the same install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_abi.abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from paymq_tools.errors import ToolError
from paymq_tools.launch import Child, ProcessFailed, launch
from paymq_tools.processes import free_port

_PROJECT_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin"
_PROJECT_ANVIL = _PROJECT_BIN / "anvil"
_SOLCJS = _PROJECT_BIN / "solcjs"
TOKEN_SOURCE = Path(__file__).resolve().parent / "contracts" / "PaymqTestToken.sol"
_READY_TIMEOUT_S = 30.0


class DevChainUnavailable(ToolError):
    code = "devchain_unavailable"


class RpcError(ToolError):
    code = "rpc_error"


def rpc_call(http: requests.Session, url: str, method: str, *params: Any) -> Any:
    """One JSON-RPC call; RpcError when the node answers with an error."""
    answer = http.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        timeout=10,
    ).json()
    if "error" in answer:
        raise RpcError(f"{method}: {answer['error'].get('message')}")
    return answer["result"]


def balance_of(http: requests.Session, url: str, account: str, token: str | None = None) -> int:
    """`account`'s balance in wei, or in the minor units of the ERC-20 `token`."""
    if token is None:
        return int(rpc_call(http, url, "eth_getBalance", account, "latest"), 16)
    data = keccak(text="balanceOf(address)")[:4] + encode(["address"], [account])
    answer = rpc_call(http, url, "eth_call", {"to": token, "data": "0x" + data.hex()}, "latest")
    return int(decode(["uint256"], bytes.fromhex(answer[2:]))[0])


def anvil_path() -> str | None:
    """PAYMQ_ANVIL, else the project's npm install, else anvil on PATH."""
    configured = os.environ.get("PAYMQ_ANVIL")
    if configured:
        return configured
    if _PROJECT_ANVIL.exists():
        return str(_PROJECT_ANVIL)
    return shutil.which("anvil")


class Anvil:
    """anvil in a child process. `block_time_s=None` mines one block per transaction
    (automine); `mining=False` mines only when asked (`mine`)."""

    def __init__(
        self,
        log_path: Path,
        *,
        block_time_s: int | None = None,
        mining: bool = True,
        chain_id: int = 31337,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        self._log_path = log_path
        self._args = ["--port", str(self.port), "--chain-id", str(chain_id), "--silent"]
        if not mining:
            self._args.append("--no-mining")
        elif block_time_s is not None:
            self._args += ["--block-time", str(block_time_s)]
        self._child: Child | None = None
        self._http = requests.Session()

    def __enter__(self) -> Anvil:
        binary = anvil_path()
        if binary is None:
            raise DevChainUnavailable("anvil is not installed: run `make install` (npm ci)")
        self._child = launch("anvil", [binary, *self._args], log_path=self._log_path)
        try:
            self._child.wait_until(self._answers, what="answering", timeout_s=_READY_TIMEOUT_S)
        except ProcessFailed as exc:
            self._child.stop()
            raise DevChainUnavailable(str(exc)) from exc
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        if self._child is not None:
            self._child.stop()

    def _answers(self) -> bool:
        try:
            self.rpc("eth_chainId")
        except requests.ConnectionError:
            return False
        return True

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc_call(self._http, self.url, method, *params)

    # --- controls ---------------------------------------------------------------------------

    def fund(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", address, "latest"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", enabled)

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def nonce(self, address: str) -> int:
        """Transactions of `address` mined so far."""
        return int(self.rpc("eth_getTransactionCount", address, "latest"), 16)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.rpc("eth_getTransactionReceipt", tx_hash)
        return result

    def drop(self, tx_hash: str) -> None:
        """Remove a transaction from the pool, as a busy node's pool may."""
        self.rpc("anvil_dropTransaction", tx_hash)

    def set_code(self, address: str, code: str) -> None:
        self.rpc("anvil_setCode", address, code)

    def send_raw(self, raw_tx: bytes) -> str:
        result: str = self.rpc("eth_sendRawTransaction", "0x" + raw_tx.hex())
        return result

    def transactions_from(self, address: str) -> list[dict[str, Any]]:
        """Every mined transaction sent by `address`, block by block."""
        sent: list[dict[str, Any]] = []
        for number in range(self.block_number() + 1):
            block = self.rpc("eth_getBlockByNumber", hex(number), True)
            sent += [tx for tx in block["transactions"] if tx["from"].lower() == address.lower()]
        return sent

    def transact(self, sender: LocalAccount, *, to: str | None, data: bytes) -> dict[str, Any]:
        """Sign and send a transaction from `sender`, mine it, and return its receipt; raises
        RpcError if it reverted."""
        transaction: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": int(self.rpc("eth_getTransactionCount", sender.address, "pending"), 16),
            "value": 0,
            "gas": 3_000_000,
            "maxFeePerGas": 50 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "data": data,
        }
        if to is not None:
            transaction["to"] = to
        signed = sender.sign_transaction(transaction)
        tx_hash = self.send_raw(bytes(signed.raw_transaction))
        self.mine(1)
        receipt = self.receipt(tx_hash)
        if receipt is None or receipt["status"] != "0x1":
            raise RpcError(f"transaction {tx_hash} did not succeed: {receipt}")
        return receipt

    def deploy(
        self, sender: LocalAccount, contract: Contract, types: list[str], args: list[Any]
    ) -> str:
        receipt = self.transact(sender, to=None, data=contract.bytecode + encode(types, args))
        return str(to_checksum_address(receipt["contractAddress"]))


@dataclass(frozen=True)
class Contract:
    abi: list[dict[str, Any]]
    bytecode: bytes


def solcjs_path() -> str | None:
    return str(_SOLCJS) if _SOLCJS.exists() else shutil.which("solcjs")


def compile_contract(source: Path, name: str, out_dir: Path) -> Contract:
    """Compile `source` with solc-js (the version pinned in package.json and the source)."""
    solcjs = solcjs_path()
    if solcjs is None:
        raise DevChainUnavailable("solc-js is not installed: run `make install` (npm ci)")
    command = [solcjs, "--bin", "--abi", "--optimize", "--base-path", str(source.parent)]
    completed = subprocess.run(  # noqa: S603 - our own compiler and source
        [*command, "-o", str(out_dir), source.name],
        capture_output=True,
        cwd=source.parent,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise DevChainUnavailable(f"solc-js failed: {completed.stderr.decode()[-500:]}")
    stem = source.name.replace(".", "_") + f"_{name}"
    return Contract(
        abi=json.loads((out_dir / f"{stem}.abi").read_text()),
        bytecode=bytes.fromhex((out_dir / f"{stem}.bin").read_text().strip()),
    )


def deploy_token(
    node: Anvil, issuer: LocalAccount, holder: str, *, decimals: int, supply: int, work_dir: Path
) -> str:
    """The USDC-style token on `node`, `supply` minor units held by `holder`; its address."""
    token = compile_contract(TOKEN_SOURCE, "PaymqTestToken", work_dir)
    return node.deploy(issuer, token, ["uint8", "address", "uint256"], [decimals, holder, supply])

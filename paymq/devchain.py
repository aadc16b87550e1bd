"""A local Ethereum node for the demo and the tests: anvil (Foundry), installed from npm by
`make install` (package.json), started on a free port, with the controls a test needs over
mining, balances and the transaction pool (anvil's own JSON-RPC methods)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from common.errors import PaymqError
from paymq.processes import free_port

_PROJECT_ANVIL = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "anvil"
_READY_TIMEOUT_S = 30.0


class DevChainUnavailable(PaymqError):
    code = "devchain_unavailable"


class RpcError(PaymqError):
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
        self._process: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()

    def __enter__(self) -> Anvil:
        binary = anvil_path()
        if binary is None:
            raise DevChainUnavailable("anvil is not installed: run `make install` (npm ci)")
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own arguments
                [binary, *self._args], stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise DevChainUnavailable(f"anvil exited:\n{self._log_path.read_text()}")
            try:
                self.rpc("eth_chainId")
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise DevChainUnavailable(f"anvil did not answer within {_READY_TIMEOUT_S} s")

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

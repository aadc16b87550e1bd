"""Contracts for the tests, compiled from their Solidity source by solc-js (npm `solc`, pinned
in package.json), and deployed to a test's anvil from a funded account."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from paymq.devchain import Anvil

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLCJS = REPO_ROOT / "node_modules" / ".bin" / "solcjs"


@dataclass(frozen=True)
class Artifact:
    abi: list[dict[str, Any]]
    bytecode: bytes


def compile_contract(source: Path, name: str, out_dir: Path) -> Artifact:
    if not SOLCJS.exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set and solc-js is not installed (make install runs npm ci)")
        pytest.skip("solc-js is not installed: make install (npm ci)")
    relative = str(source.relative_to(REPO_ROOT))
    command = [str(SOLCJS), "--bin", "--abi", "--optimize", "--base-path", str(REPO_ROOT)]
    subprocess.run(
        [*command, "-o", str(out_dir), relative],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    stem = relative.replace("/", "_").replace(".", "_") + f"_{name}"
    return Artifact(
        abi=json.loads((out_dir / f"{stem}.abi").read_text()),
        bytecode=bytes.fromhex((out_dir / f"{stem}.bin").read_text().strip()),
    )


def send(anvil: Anvil, sender: LocalAccount, *, to: str | None, data: bytes) -> dict[str, Any]:
    """Sign and send a transaction from `sender` (automine), and return its receipt."""
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": anvil.chain_id,
            "nonce": anvil.nonce(sender.address),
            **({"to": to} if to else {}),
            "value": 0,
            "gas": 3_000_000,
            "maxFeePerGas": 20 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "data": data,
        }
    )
    tx_hash = anvil.send_raw(bytes(signed.raw_transaction))
    anvil.mine(1)
    receipt = anvil.receipt(tx_hash)
    assert receipt is not None
    assert receipt["status"] == "0x1", receipt
    return receipt


def deploy(
    anvil: Anvil, deployer: LocalAccount, artifact: Artifact, types: list[str], args: list[Any]
) -> str:
    receipt = send(anvil, deployer, to=None, data=artifact.bytecode + encode(types, args))
    return str(to_checksum_address(receipt["contractAddress"]))

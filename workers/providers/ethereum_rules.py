"""The on-chain payout's decisions, without I/O: what fees to sign with, and what the chain's
answers say about a transaction we signed (see workers/providers/ethereum.py)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from common.errors import FeesAboveCap

#: Gas of a plain ETH transfer to an account without code.
TRANSFER_GAS = 21_000
#: ERC-20 `transfer(address,uint256)`: its selector, and the topic of its `Transfer` event.
TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


@dataclass(frozen=True)
class TokenTransfer:
    """An ERC-20 transfer a transaction asks `token` to make (addresses in lower case)."""

    token: str
    recipient: str
    value: int


def transfer_call(recipient: str, value: int) -> bytes:
    """The call data of `transfer(recipient, value)`."""
    return TRANSFER_SELECTOR + encode(["address", "uint256"], [recipient, value])


def token_transfer_of(to: str, data: bytes) -> TokenTransfer | None:
    """The token transfer a transaction to `to` with `data` asks for; None for anything else."""
    if len(data) != 68 or data[:4] != TRANSFER_SELECTOR:
        return None
    recipient, value = decode(["address", "uint256"], data[4:])
    return TokenTransfer(to.lower(), str(recipient).lower(), int(value))


@dataclass(frozen=True)
class Log:
    address: str
    topics: Sequence[bytes]
    data: bytes


def transfer_logged(logs: Sequence[Log], transfer: TokenTransfer, sender: str) -> bool:
    """Did the token emit the `Transfer` event of this transfer? A token may return false
    instead of reverting, and its transaction is then mined with status 1 and moves nothing."""
    for log in logs:
        if log.address.lower() != transfer.token or len(log.topics) != 3:
            continue
        if log.topics[0] != TRANSFER_TOPIC or len(log.data) != 32:
            continue
        source, target = (f"0x{topic[-20:].hex()}" for topic in log.topics[1:])
        if (source, target) == (sender.lower(), transfer.recipient) and int.from_bytes(
            log.data, "big"
        ) == transfer.value:
            return True
    return False


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int


def fees_for(
    base_fee_wei: int,
    suggested_tip_wei: int,
    *,
    max_fee_cap_wei: int,
    max_tip_cap_wei: int,
) -> Fees:
    """EIP-1559 fees for the next blocks: the tip the node suggests (at most `max_tip_cap_wei`)
    and room for the base fee to double, never above `max_fee_cap_wei`. Raises FeesAboveCap
    when even the current base fee and the tip do not fit under the cap."""
    tip = min(max(suggested_tip_wei, 0), max_tip_cap_wei)
    if base_fee_wei + tip > max_fee_cap_wei:
        raise FeesAboveCap(
            f"base fee {base_fee_wei} wei + tip {tip} wei exceed the cap of "
            f"{max_fee_cap_wei} wei per gas (ethereum_max_fee_per_gas_wei); not signed"
        )
    return Fees(min(2 * base_fee_wei + tip, max_fee_cap_wei), tip)


def gas_limit(estimated_gas: int) -> int:
    """A transfer to an account costs exactly 21,000; a contract's receive code may cost more
    when it runs than when estimated, so it gets a fifth more."""
    return estimated_gas if estimated_gas <= TRANSFER_GAS else estimated_gas * 6 // 5


class Verdict(enum.Enum):
    #: Mined in a block with enough blocks on top: the payout succeeded.
    CONFIRMED = "confirmed"
    #: Mined successfully, not yet buried deep enough.
    CONFIRMING = "confirming"
    #: Known to the node, waiting in its pool.
    WAITING = "waiting"
    #: Mined but reverted: no value moved (its fee did).
    REVERTED = "reverted"
    #: Mined, not reverted, yet the token logged no such transfer: nothing moved.
    NO_TRANSFER = "no_transfer"
    #: Neither mined nor known, and its nonce is used: another transaction took it.
    REPLACED = "replaced"
    #: Neither mined nor known, nonce still free: dropped (or never arrived); send it again.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChainFacts:
    """What the node said, read in this order: the wallet's mined transaction count first, so
    a transaction mined between two reads is never taken for a replaced one."""

    wallet_nonce: int
    receipt_status: int | None = None
    receipt_block: int | None = None
    latest_block: int | None = None
    in_pool: bool = False
    #: For a token transfer mined with status 1: whether the token logged it; else None.
    transfer_logged: bool | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    confirmations: int = 0


def judge(facts: ChainFacts, *, nonce: int, confirmations_required: int) -> Judgement:
    if facts.receipt_block is not None:
        return _judge_mined(facts, facts.receipt_block, confirmations_required)
    if facts.in_pool:
        return Judgement(Verdict.WAITING)
    if facts.wallet_nonce > nonce:
        return Judgement(Verdict.REPLACED)
    return Judgement(Verdict.UNKNOWN)


def _judge_mined(facts: ChainFacts, mined_in: int, confirmations_required: int) -> Judgement:
    if facts.receipt_status == 0:
        return Judgement(Verdict.REVERTED)
    if facts.transfer_logged is False:
        return Judgement(Verdict.NO_TRANSFER)
    latest = facts.latest_block if facts.latest_block is not None else mined_in
    confirmations = max(latest - mined_in + 1, 1)
    if confirmations >= confirmations_required:
        return Judgement(Verdict.CONFIRMED, confirmations)
    return Judgement(Verdict.CONFIRMING, confirmations)

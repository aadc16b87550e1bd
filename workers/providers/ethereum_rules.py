"""The on-chain payout's decisions, without I/O: what fees to sign with, and what the chain's
answers say about a transaction we signed (see workers/providers/ethereum.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from common.errors import ProviderUnavailable

#: Gas of a plain ETH transfer to an account without code.
TRANSFER_GAS = 21_000


class FeesAboveCap(ProviderUnavailable):
    """The base fee plus the tip exceed the configured cap: nothing is signed now."""

    code = "fees_above_cap"


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


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    confirmations: int = 0


def judge(facts: ChainFacts, *, nonce: int, confirmations_required: int) -> Judgement:
    if facts.receipt_block is not None:
        if facts.receipt_status == 0:
            return Judgement(Verdict.REVERTED)
        latest = facts.latest_block if facts.latest_block is not None else facts.receipt_block
        confirmations = max(latest - facts.receipt_block + 1, 1)
        if confirmations >= confirmations_required:
            return Judgement(Verdict.CONFIRMED, confirmations)
        return Judgement(Verdict.CONFIRMING, confirmations)
    if facts.in_pool:
        return Judgement(Verdict.WAITING)
    if facts.wallet_nonce > nonce:
        return Judgement(Verdict.REPLACED)
    return Judgement(Verdict.UNKNOWN)

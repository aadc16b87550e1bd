"""The on-chain payout's pure decisions: the fees it signs with, the gas limit, and what the
chain's answers say about a signed transaction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import FeesAboveCap, RetryableError
from workers.providers.ethereum_rules import (
    TRANSFER_GAS,
    TRANSFER_TOPIC,
    ChainFacts,
    Fees,
    Judgement,
    Log,
    TokenTransfer,
    Verdict,
    fees_for,
    gas_limit,
    judge,
    token_transfer_of,
    transfer_call,
    transfer_logged,
)

GWEI = 1_000_000_000
CAP = 200 * GWEI
TIP_CAP = 2 * GWEI


def fees(base: int, tip: int, *, cap: int = CAP, tip_cap: int = TIP_CAP) -> Fees:
    return fees_for(base, tip, max_fee_cap_wei=cap, max_tip_cap_wei=tip_cap)


# --- fees_for --------------------------------------------------------------------------------


def test_the_suggested_tip_is_used_below_the_tip_cap() -> None:
    assert fees(10 * GWEI, GWEI).max_priority_fee_per_gas_wei == GWEI


def test_the_suggested_tip_is_capped_at_the_tip_cap() -> None:
    assert fees(10 * GWEI, 50 * GWEI).max_priority_fee_per_gas_wei == TIP_CAP


def test_a_negative_suggested_tip_becomes_zero() -> None:
    result = fees(10 * GWEI, -5)
    assert result.max_priority_fee_per_gas_wei == 0
    assert result.max_fee_per_gas_wei == 20 * GWEI


def test_max_fee_leaves_room_for_the_base_fee_to_double() -> None:
    assert fees(10 * GWEI, GWEI) == Fees(
        max_fee_per_gas_wei=2 * 10 * GWEI + GWEI, max_priority_fee_per_gas_wei=GWEI
    )


def test_max_fee_is_clamped_to_the_cap() -> None:
    # 2 * 150 + 2 = 302 gwei would be above the 200 gwei cap; 150 + 2 fits under it.
    assert fees(150 * GWEI, TIP_CAP) == Fees(
        max_fee_per_gas_wei=CAP, max_priority_fee_per_gas_wei=TIP_CAP
    )


def test_fees_above_the_cap_are_refused_as_retryable() -> None:
    with pytest.raises(FeesAboveCap) as caught:
        fees(CAP - TIP_CAP + 1, TIP_CAP)
    assert isinstance(caught.value, RetryableError)
    assert caught.value.code == "fees_above_cap"
    assert str(CAP) in str(caught.value)


def test_a_base_fee_alone_above_the_cap_is_refused() -> None:
    with pytest.raises(FeesAboveCap):
        fees(CAP + 1, 0)


def test_base_fee_plus_tip_exactly_at_the_cap_is_accepted() -> None:
    assert fees(CAP - TIP_CAP, TIP_CAP) == Fees(
        max_fee_per_gas_wei=CAP, max_priority_fee_per_gas_wei=TIP_CAP
    )


def test_the_cap_check_uses_the_capped_tip_not_the_suggestion() -> None:
    # The suggestion alone would exceed the cap; once capped at the tip cap it fits.
    result = fees(CAP - TIP_CAP, CAP, tip_cap=TIP_CAP)
    assert result.max_priority_fee_per_gas_wei == TIP_CAP
    assert result.max_fee_per_gas_wei == CAP


@settings(max_examples=500, deadline=None)
@given(
    base=st.integers(min_value=0, max_value=10**15),
    tip=st.integers(min_value=0, max_value=10**15),
    cap=st.integers(min_value=0, max_value=10**15),
    tip_cap=st.integers(min_value=0, max_value=10**15),
)
def test_fees_are_refused_or_ordered_under_the_cap(
    base: int, tip: int, cap: int, tip_cap: int
) -> None:
    try:
        result = fees(base, tip, cap=cap, tip_cap=tip_cap)
    except FeesAboveCap:
        assert base + min(tip, tip_cap) > cap
        return
    max_fee = result.max_fee_per_gas_wei
    priority = result.max_priority_fee_per_gas_wei
    assert priority <= max_fee <= cap
    assert max_fee >= base + priority
    assert priority == min(tip, tip_cap)


# --- gas_limit -------------------------------------------------------------------------------


def test_a_plain_transfer_keeps_its_exact_gas() -> None:
    assert gas_limit(TRANSFER_GAS) == TRANSFER_GAS == 21_000


@pytest.mark.parametrize(
    ("estimated", "limit"),
    [(21_001, 25_201), (25_000, 30_000), (50_000, 60_000), (100_003, 120_003)],
)
def test_more_than_a_transfer_gets_a_fifth_more(estimated: int, limit: int) -> None:
    assert gas_limit(estimated) == limit
    assert isinstance(gas_limit(estimated), int)


# --- judge -----------------------------------------------------------------------------------

NONCE = 7
REQUIRED = 12


def verdict_of(facts: ChainFacts) -> Judgement:
    return judge(facts, nonce=NONCE, confirmations_required=REQUIRED)


def test_a_reverted_receipt_is_reverted() -> None:
    facts = ChainFacts(
        wallet_nonce=NONCE + 1, receipt_status=0, receipt_block=100, latest_block=200
    )
    assert verdict_of(facts) == Judgement(Verdict.REVERTED)


@pytest.mark.parametrize(
    ("latest_block", "verdict", "confirmations"),
    [
        (100, Verdict.CONFIRMING, 1),  # the block that includes it counts as one
        (100 + REQUIRED - 2, Verdict.CONFIRMING, REQUIRED - 1),
        (100 + REQUIRED - 1, Verdict.CONFIRMED, REQUIRED),
        (100 + REQUIRED + 50, Verdict.CONFIRMED, REQUIRED + 51),
    ],
)
def test_a_mined_transaction_is_confirmed_once_buried_deep_enough(
    latest_block: int, verdict: Verdict, confirmations: int
) -> None:
    facts = ChainFacts(
        wallet_nonce=NONCE + 1, receipt_status=1, receipt_block=100, latest_block=latest_block
    )
    assert verdict_of(facts) == Judgement(verdict, confirmations)


def test_a_transaction_waiting_in_the_pool_is_waiting() -> None:
    assert verdict_of(ChainFacts(wallet_nonce=NONCE, in_pool=True)) == Judgement(Verdict.WAITING)


def test_a_used_nonce_without_receipt_or_pool_entry_is_replaced() -> None:
    assert verdict_of(ChainFacts(wallet_nonce=NONCE + 1)) == Judgement(Verdict.REPLACED)


@pytest.mark.parametrize("wallet_nonce", [NONCE, NONCE - 1, 0])
def test_a_free_nonce_without_receipt_or_pool_entry_is_unknown(wallet_nonce: int) -> None:
    assert verdict_of(ChainFacts(wallet_nonce=wallet_nonce)) == Judgement(Verdict.UNKNOWN)


def test_a_receipt_wins_over_a_higher_wallet_nonce() -> None:
    facts = ChainFacts(
        wallet_nonce=NONCE + 5, receipt_status=1, receipt_block=100, latest_block=100
    )
    judgement = verdict_of(facts)
    assert judgement.verdict is not Verdict.REPLACED
    assert judgement == Judgement(Verdict.CONFIRMING, 1)


def test_a_pool_entry_wins_over_a_higher_wallet_nonce() -> None:
    facts = ChainFacts(wallet_nonce=NONCE + 1, in_pool=True)
    assert verdict_of(facts) == Judgement(Verdict.WAITING)


# --- ERC-20 transfers ----------------------------------------------------------------------

USDC_CONTRACT = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RECIPIENT = "0x52908400098527886E0F7030069857D2E4169EE7"


def transfer_log(
    *, token: str = USDC_CONTRACT, sender: str = SENDER, recipient: str = RECIPIENT, value: int = 5
) -> Log:
    def topic(address: str) -> bytes:
        return bytes(12) + bytes.fromhex(address[2:])

    return Log(token, [TRANSFER_TOPIC, topic(sender), topic(recipient)], value.to_bytes(32, "big"))


def test_a_transfer_call_is_the_erc20_selector_and_its_two_words() -> None:
    data = transfer_call(RECIPIENT, 125_500_000)
    assert data[:4].hex() == "a9059cbb"
    assert len(data) == 68
    assert token_transfer_of(USDC_CONTRACT, data) == TokenTransfer(
        USDC_CONTRACT.lower(), RECIPIENT.lower(), 125_500_000
    )


@pytest.mark.parametrize("data", [b"", b"\xa9\x05\x9c\xbb", b"\x00" * 68])
def test_anything_else_is_not_a_token_transfer(data: bytes) -> None:
    assert token_transfer_of(USDC_CONTRACT, data) is None


def test_the_tokens_own_transfer_event_is_recognised() -> None:
    transfer = TokenTransfer(USDC_CONTRACT.lower(), RECIPIENT.lower(), 5)
    assert transfer_logged([transfer_log()], transfer, SENDER)


@pytest.mark.parametrize(
    "log",
    [
        transfer_log(token="0x" + "11" * 20),  # another contract's event
        transfer_log(sender="0x" + "22" * 20),
        transfer_log(recipient="0x" + "33" * 20),
        transfer_log(value=4),
    ],
    ids=["other-contract", "other-sender", "other-recipient", "other-value"],
)
def test_a_transfer_event_that_differs_in_anything_does_not_count(log: Log) -> None:
    transfer = TokenTransfer(USDC_CONTRACT.lower(), RECIPIENT.lower(), 5)
    assert not transfer_logged([log], transfer, SENDER)
    assert not transfer_logged([], transfer, SENDER)


def test_a_mined_token_transfer_without_its_event_moved_nothing() -> None:
    facts = ChainFacts(
        wallet_nonce=1, receipt_status=1, receipt_block=10, latest_block=20, transfer_logged=False
    )
    assert judge(facts, nonce=0, confirmations_required=1).verdict is Verdict.NO_TRANSFER
    logged = ChainFacts(
        wallet_nonce=1, receipt_status=1, receipt_block=10, latest_block=20, transfer_logged=True
    )
    assert judge(logged, nonce=0, confirmations_required=1).verdict is Verdict.CONFIRMED

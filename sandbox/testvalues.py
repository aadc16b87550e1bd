"""Deterministic test values: which card, token or address leads to which outcome.

Stripe-like, so anyone who has tested against a real provider recognises them. Anything not
listed here succeeds; the decision logic around these tables lives in `state`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    # The provider failed before moving money: answered 503 and not stored, so a retry tries again.
    PROCESSING_ERROR = "processing_error"
    # Accepted and under way (a transfer waiting for confirmations): 202, settles later.
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    decline_code: str | None = None


SUCCEEDED = Outcome(OutcomeKind.SUCCEEDED)
PENDING = Outcome(OutcomeKind.PENDING)
#: A pending payout reports `succeeded` this long after it was made.
PENDING_SETTLE_S = 2.0
PROCESSING_ERROR = Outcome(OutcomeKind.PROCESSING_ERROR)


def declined(decline_code: str) -> Outcome:
    return Outcome(OutcomeKind.DECLINED, decline_code)


CARD_NUMBERS: Mapping[str, Outcome] = {
    "4242424242424242": SUCCEEDED,
    "5555555555554444": SUCCEEDED,
    "4000000000009995": declined("insufficient_funds"),
    "4000000000000002": declined("do_not_honor"),
    "4000000000000069": declined("expired_card"),
    "4000000000000119": PROCESSING_ERROR,
}

CARD_TOKENS: Mapping[str, Outcome] = {
    "tok_visa": SUCCEEDED,
    "tok_success": SUCCEEDED,
    "tok_mastercard": SUCCEEDED,
    "tok_insufficient_funds": declined("insufficient_funds"),
    "tok_do_not_honor": declined("do_not_honor"),
    "tok_expired_card": declined("expired_card"),
    "tok_processing_error": PROCESSING_ERROR,
}

# Keys are lower-case: addresses are compared case-insensitively (EIP-55 checksums vary the case).
PAYOUT_ADDRESSES: Mapping[str, Outcome] = {
    "0x000000000000000000000000000000000000dead": declined("address_blocked"),
    "0x0000000000000000000000000000000000000bad": declined("insufficient_balance"),
    "0x000000000000000000000000000000000000beef": PENDING,
}


def card_number_outcome(number: str) -> Outcome:
    return CARD_NUMBERS.get(number, SUCCEEDED)


def card_token_outcome(token: str) -> Outcome:
    return CARD_TOKENS.get(token, SUCCEEDED)


def payout_address_outcome(address: str) -> Outcome:
    return PAYOUT_ADDRESSES.get(address.lower(), SUCCEEDED)

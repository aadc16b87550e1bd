"""`paymq dlq show` prints a dead letter's headers with card numbers masked, and its times as
times: a 13-digit millisecond timestamp passes the Luhn check one time in ten, and was masked
as a card number."""

from __future__ import annotations

from common.redact import luhn_ok
from paymq.dlq import _header_shown

#: 2026-12-05T16:53:52.846Z, whose 13 digits pass the Luhn check.
LUHN_VALID_MS = 1796489632846


def test_a_time_header_is_shown_as_a_time_even_when_its_digits_pass_the_luhn_check() -> None:
    assert luhn_ok(str(LUHN_VALID_MS))
    assert _header_shown("paymq-created-at-ms", LUHN_VALID_MS) == "2026-12-05T16:53:52.846Z"


def test_a_card_number_in_any_header_is_masked_even_where_a_time_belongs() -> None:
    card = 4111111111111111
    assert _header_shown("paymq-created-at-ms", card) == "****1111"  # no time: masked text
    assert _header_shown("note", str(card)) == "****1111"
    assert _header_shown("note", card) == "****1111"

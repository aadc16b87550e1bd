"""The card-number detector's shortcut never changes its answer: `contains_pan` (a regex
search first) agrees with the full scan on any text, card numbers mixed in or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.pan import contains_pan, scan_for_pan

#: Digits, their separators, hex letters, an 0x prefix's x, and what stands beside them.
_TEXT = st.text(alphabet="0123456789 -abcdefxX_.:/", max_size=80)
_CARDS = st.sampled_from(
    [
        "4222222222222",
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
    ]
)


@given(_TEXT)
def test_the_shortcut_agrees_with_the_full_scan_on_any_text(text: str) -> None:
    assert contains_pan(text) == scan_for_pan(text)


@given(_TEXT, _CARDS, _TEXT)
def test_the_shortcut_agrees_with_the_full_scan_around_a_card_number(
    before: str, card: str, after: str
) -> None:
    text = before + card + after
    assert contains_pan(text) == scan_for_pan(text)

"""Last line of defence for text that leaves the process: mask anything shaped like a card
number to its last four digits. Code never puts card data in messages on purpose; this catches
what a producer may have put where it does not belong (a PAN in a merchant reference)."""

from __future__ import annotations

import logging
import re

_PAN = re.compile(r"(?<![0-9])(?:[0-9][ -]?){8,15}([0-9]{4})(?![0-9])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return "****" + match.group(1) if _luhn_ok(digits) else match.group(0)


def mask_pans(text: str) -> str:
    """Replace every Luhn-valid 12-19 digit number (spaces or dashes allowed) by ****last4."""
    return _PAN.sub(_mask, text)


class PanMaskingFilter(logging.Filter):
    """A logging filter that masks card numbers in every formatted record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_pans(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

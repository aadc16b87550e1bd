"""Last line of defence for text that leaves the process: mask anything shaped like a card
number to its last four digits. Code never puts card data in messages on purpose; this catches
what a producer may have put where it does not belong (a PAN in a merchant reference).

A card number is any Luhn-valid sequence of 12 to 19 digits, written in one piece or in groups
separated by spaces or dashes, even after other digit groups ("qty 12 4111 1111 1111 1111").
Luhn-valid numbers that are not cards (some timestamps) are masked too: a false alarm costs
nothing, a missed card number does. Identifiers that merely contain digit groups are left whole:
a UUID (a payment id whose last group happens to be all digits) and a 0x-prefixed hex string
(an Ethereum address or transaction hash) are never card numbers, and a masked one misleads.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Digit groups joined by single spaces or dashes, as long as they go.
DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
#: Identifiers whose digit groups are never card numbers: UUIDs and 0x-prefixed hex.
IDENTIFIER = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|\b0[xX][0-9a-fA-F]+\b"
)
_GROUP = re.compile(r"[0-9]+")
_MIN_DIGITS, _MAX_DIGITS = 12, 19


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_spans(run: str, *, min_digits: int = _MIN_DIGITS) -> list[tuple[int, int, str]]:
    """(start, end, last4) of card numbers in a run, made of whole digit groups: a number is
    either written in one piece or grouped, never cut inside a group. Masking looks from 12
    digits on; refusing a request (common/pan.py) from 13."""
    groups = [(m.start(), m.end(), m.group(0)) for m in _GROUP.finditer(run)]
    spans: list[tuple[int, int, str]] = []
    index = 0
    while index < len(groups):
        best = None
        digits = ""
        for end in range(index, len(groups)):
            digits += groups[end][2]
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) >= min_digits and luhn_ok(digits):
                best = (groups[index][0], groups[end][1], digits[-4:], end)
        if best is None:
            index += 1
            continue
        spans.append(best[:3])
        index = best[3] + 1
    return spans


def _mask_run(run: str) -> str:
    for start, end, last4 in reversed(card_spans(run)):
        run = f"{run[:start]}****{last4}{run[end:]}"
    return run


def mask_pans(text: str) -> str:
    """Replace every possible card number by ****<last four digits>, outside identifiers."""
    pieces: list[str] = []
    start = 0
    for found in IDENTIFIER.finditer(text):
        pieces.append(_mask_text(text[start : found.start()]))
        pieces.append(found.group(0))
        start = found.end()
    pieces.append(_mask_text(text[start:]))
    return "".join(pieces)


def _mask_text(text: str) -> str:
    return DIGIT_RUN.sub(lambda m: _mask_run(m.group(0)), text)


def problems(
    errors: Iterable[Mapping[str, Any]], *, limit: int | None = 10, whole: str = "body"
) -> str:
    """Where and what, from a validation error list (pydantic's `errors()`): "loc: msg" for at
    most `limit` problems (`whole` where the problem is the whole value). Never the input,
    which may be a card number typed in the wrong place, nor a model's name; card numbers are
    masked even where a field's name is one."""
    listed = list(errors)[:limit]
    return mask_pans(
        "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in listed)
    )


#: What every LogRecord has; anything else on a record came from `extra` or a context filter.
#: Trace and span ids are hex made by the tracer, never input: left as they are.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "trace_id",
    "span_id",
}


class PanMaskingFilter(logging.Filter):
    """Masks card numbers in every record: its message, its context fields (message id,
    payment id, anything passed as `extra`) and any exception text."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_pans(message)
        if masked != message:
            record.msg, record.args = masked, None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, mask_pans(value))
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is printed masked.
            record.exc_text = mask_pans(self._formatter.formatException(record.exc_info))
        return True

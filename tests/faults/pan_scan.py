"""A scanner for card numbers and a CVC left at rest: in files (a broker's data directory, a
SQLite store, logs) and in message bodies. Pure functions over bytes; the tests feed it.

Deliberately independent of common/redact.py and common/pan.py, the code under test: a bug in
the product's detector must not blind the scanner that checks it.

What counts as a hit:
- a card number: a run of digits, in one piece or grouped by single spaces or dashes, whose
  digits (separators dropped) hold one of the card numbers looked for. Every card number looked
  for is a 13-19 digit Luhn-valid number, so a hit is a Luhn-valid run that equals one of them
  (or a longer run around one: a leak all the same). Masked forms (****1111) are not hits;
- the CVC as a field: `cvc` then `:` or `=`, quotes or JSON-escaped quotes around, then the
  CVC digits (`"cvc":"737"`, `\\"cvc\\": \\"737\\"`, `cvc=737`). A bare "737" occurs by chance
  in binary files, so it is not searched for.

Not searched for: other encodings (UTF-16, base64, compressed data). Neither the broker's
files nor SQLite nor our logs compress or re-encode what they are given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_DIGIT_RUN = re.compile(rb"[0-9]+(?:[ -][0-9]+)*")
_SEPARATORS = re.compile(rb"[ -]")
_MIN_DIGITS, _MAX_DIGITS = 13, 19


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def grouped(pan: str, separator: str) -> str:
    """The number in groups of four, as people type it: "4111 1111 1111 1111"."""
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


@dataclass(frozen=True)
class Secrets:
    """What must not be found: card numbers (digits only) and one CVC."""

    pans: frozenset[str]
    cvc: str

    def __post_init__(self) -> None:
        for pan in self.pans:
            if not (pan.isdigit() and _MIN_DIGITS <= len(pan) <= _MAX_DIGITS and luhn_ok(pan)):
                raise ValueError(f"not a 13-19 digit Luhn-valid card number: ****{pan[-4:]}")
        if not (self.cvc.isdigit() and 3 <= len(self.cvc) <= 4):
            raise ValueError("a CVC is 3 or 4 digits")

    def cvc_field(self) -> re.Pattern[bytes]:
        quote = rb"[\\\"']*"
        return re.compile(
            rb"cvc" + quote + rb"\s*[:=]\s*" + quote + self.cvc.encode() + rb"(?![0-9])",
            re.IGNORECASE,
        )


@dataclass(frozen=True)
class Hit:
    where: str
    offset: int
    #: The card number found (digits only), or "" for the CVC.
    pan: str = field(repr=False)
    what: str

    def __str__(self) -> str:
        return f"{self.what} in {self.where} at byte {self.offset}"


@dataclass
class Tally:
    """What one source held: files (or messages, or rows), their bytes, and the hits; and the
    hits set apart as inside the one copy allowed of a published input (`scan_tree`)."""

    source: str
    unit: str
    items: int = 0
    size_bytes: int = 0
    hits: list[Hit] = field(default_factory=list)
    set_apart: list[Hit] = field(default_factory=list)

    def add(self, data: bytes, where: str, secrets: Secrets, allowed: Counter[bytes]) -> None:
        self.items += 1
        self.size_bytes += len(data)
        spans = _claim(data, allowed)
        for hit in scan_bytes(data, where, secrets):
            inside = any(start <= hit.offset < end for start, end in spans)
            (self.set_apart if inside else self.hits).append(hit)


def scan_bytes(data: bytes, where: str, secrets: Secrets) -> list[Hit]:
    """Every card number and CVC field of `secrets` in `data`; `where` names the data."""
    hits = []
    for run in _DIGIT_RUN.finditer(data):
        text = run.group(0)
        digits = _SEPARATORS.sub(b"", text).decode("ascii")
        if len(digits) < _MIN_DIGITS:
            continue
        written = "spaced" if b" " in text else "dashed" if b"-" in text else "whole"
        hits += [
            Hit(where, run.start(), pan, f"card number ****{pan[-4:]} ({written})")
            for pan in sorted(secrets.pans)
            if pan in digits
        ]
    hits += [
        Hit(where, found.start(), "", "the CVC as a field")
        for found in secrets.cvc_field().finditer(data)
    ]
    return hits


def scan_tree(
    root: Path, secrets: Secrets, source: str, *, published: Iterable[bytes] = ()
) -> Tally:
    """Every regular file under `root` (symbolic links not followed), read whole.

    `published`: byte strings put there on purpose, such as requests as a producer published
    them (a broker writes every message to its log before any consumer sees it). One copy of
    each, wherever it is found first, is set apart; any further copy is a hit like any other:
    the system made it (a dead-letter copy kept as received, for one).
    """
    tally = Tally(source, "files")
    allowed = Counter(published)
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            tally.add(path.read_bytes(), str(path), secrets, allowed)
    return tally


def scan_blobs(
    blobs: Iterable[tuple[str, bytes]], secrets: Secrets, source: str, unit: str
) -> Tally:
    """Named byte strings: message bodies and headers, store rows, webhook bodies."""
    tally = Tally(source, unit)
    for where, data in blobs:
        tally.add(data, where, secrets, Counter())
    return tally


def _claim(data: bytes, allowed: Counter[bytes]) -> list[tuple[int, int]]:
    """The spans of `data` holding allowed copies, each taking one from `allowed`."""
    spans = []
    for piece in [p for p, left in allowed.items() if left > 0]:
        start = data.find(piece)
        while start >= 0 and allowed[piece] > 0:
            spans.append((start, start + len(piece)))
            allowed[piece] -= 1
            start = data.find(piece, start + len(piece))
    return spans


def table(tallies: Iterable[Tally]) -> str:
    """A short table of what was scanned and what was found."""
    lines = [f"{'scanned':30} {'items':>12} {'bytes':>9} {'hits':>5} {'published input':>16}"]
    for t in tallies:
        lines.append(
            f"{t.source:30} {t.items:>6} {t.unit:5} {t.size_bytes:>9} {len(t.hits):>5}"
            f" {len(t.set_apart):>16}"
        )
    return "\n".join(lines)

"""Card numbers in clear where only free text belongs: found and refused at every entry.

Card data travels only sealed (common/sealing.py) or as a provider's token. A card number typed
into a merchant reference, a metadata key or value, an idempotency key or a token would travel
in clear through the broker, the store, results, dead letters and webhooks; so the producer, the
HTTP API and the workers all refuse a request that carries one, with code `pan_in_clear`,
before it is signed, stored or published.

What counts as a card number (one detector for every entry): 13 to 19 digits, in one piece or
grouped by single spaces or dashes, passing the Luhn check, and not part of a longer digit run
or of a hex token (a word of hex digits and letters: a hash; a 0x address; a UUID). Letters
around it do not hide it: `ref4111111111111111` holds one. A numeric reference of 13 to 19
digits passes the Luhn check one time in ten: such references are refused too, by design, as
a payment network's scanner would flag them; give references a non-numeric part.
"""

from __future__ import annotations

import re

from common.errors import PanInClear
from common.models import PaymentRequest
from common.redact import DIGIT_RUN, IDENTIFIER, card_spans

_MIN_DIGITS = 13
#: A word of hex digits and hex letters only, with both: a hash, a key id, an address.
_HEX_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])"
    r"[0-9a-fA-F]+(?![0-9A-Za-z])"
)
#: Thirteen digits, each after at most one space or dash: what any card number holds. Taking
#: out identifiers and hex tokens below only removes digits and never joins two runs (each is
#: bordered by a non-alphanumeric or an end), so text without this holds no card number, and
#: most text (keys, codes, times, amounts) is passed on this one search.
_PAN_SHAPED = re.compile(r"[0-9](?:[ -]?[0-9]){12}")


def contains_pan(text: str) -> bool:
    """True if `text` holds something that may be a card number (module docstring)."""
    return _PAN_SHAPED.search(text) is not None and scan_for_pan(text)


def scan_for_pan(text: str) -> bool:
    """`contains_pan` without its shortcut: every digit run, after identifiers and hex tokens
    are taken out, checked for whole groups of 13 to 19 digits that pass the Luhn check."""
    text = _HEX_TOKEN.sub(" ", IDENTIFIER.sub(" ", text))
    return any(
        card_spans(found.group(0), min_digits=_MIN_DIGITS) for found in DIGIT_RUN.finditer(text)
    )


#: Fields whose digits are the payment's by design, never free text.
_NOT_TEXT = frozenset({"amount_minor"})


def document_fields_with_pans(document: object, path: str = "") -> list[str]:
    """The paths of every string in a parsed JSON document (keys too) that holds a card
    number, amounts aside; never the text. Run on the body before its schema, so a card
    number in a field the schema would refuse (a spaced one in a token) is still named."""
    found: list[str] = []
    if isinstance(document, str):
        if contains_pan(document):
            found.append(path or "the body")
    elif isinstance(document, dict):
        for key, value in document.items():
            if contains_pan(key):  # named by where it is: the key itself is the secret
                found.append(f"{path or 'the body'} (a key)")
            elif key not in _NOT_TEXT:
                found.extend(document_fields_with_pans(value, f"{path}.{key}" if path else key))
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found.extend(document_fields_with_pans(item, f"{path}[{index}]"))
    return found


def refuse_pans_in_document(document: object) -> None:
    """Raise PanInClear if any string of a parsed JSON body holds a card number: what the
    workers run on every request, whatever its fields."""
    found = document_fields_with_pans(document)
    if found:
        raise PanInClear(_refusal(found))


def fields_with_pans(request: PaymentRequest) -> list[str]:
    """The names of the request's free-text fields that hold a card number; never the text."""
    found = []
    if contains_pan(request.idempotency_key):
        found.append("idempotency_key")
    if contains_pan(request.merchant_reference):
        found.append("merchant_reference")
    if any(contains_pan(key) for key in request.metadata):
        found.append("metadata (a key)")
    if any(contains_pan(value) for value in request.metadata.values()):
        found.append("metadata (a value)")
    source = getattr(request.details, "source", None)
    for name in ("token", "kid"):
        text = getattr(source, name, None)
        if isinstance(text, str) and contains_pan(text):
            found.append(f"details.source.{name}")
    return found


def refuse_pans(request: PaymentRequest) -> None:
    """Raise PanInClear if a free-text field of the request holds a card number."""
    found = fields_with_pans(request)
    if found:
        raise PanInClear(_refusal(found))


def _refusal(found: list[str]) -> str:
    return (
        f"a card number in clear in {', '.join(dict.fromkeys(found))}: card data travels only "
        "sealed (details.source.type sealed) or as a provider token; the request was not taken"
    )

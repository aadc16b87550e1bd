"""Money: integer minor units plus a currency code. Never floats.

Fiat currencies are ISO 4217 codes with the exponent the standard assigns (JPY 0, USD 2, BHD 3),
read from the `iso4217` package rather than a hand-kept table. Digital assets, which ISO 4217
does not cover, have their own small table with the exponent their chains use.

On the wire an amount is a JSON integer when it fits in 2^53 - 1 (what every JSON parser holds
exactly) and a string of decimal digits otherwise (wei amounts routinely exceed 2^53).
Every amount is below 10^12 major units of its currency (`max_amount_minor`).
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

import iso4217
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import Field as _Field

MAX_SAFE_JSON_INT = 2**53 - 1
#: Every amount is below 10**12 major units of its currency (a trillion dollars, yen or ether):
#: anything larger is a bug or an attack, and is refused before it reaches a provider.
MAX_MAJOR_DIGITS = 12

#: Digital assets: code -> exponent (minor units per major unit = 10**exponent).
DIGITAL_ASSETS: dict[str, int] = {"ETH": 18, "USDC": 6, "USDT": 6, "BTC": 8}

#: Upper bound on any amount in any currency, in minor units: 10**30 - 1 (ETH in wei).
MAX_AMOUNT_MINOR = 10 ** (MAX_MAJOR_DIGITS + max(DIGITAL_ASSETS.values())) - 1
_MAX_DIGITS = len(str(MAX_AMOUNT_MINOR))

_DIGITS = re.compile(r"[1-9][0-9]*")
#: Enough digits for any amount at any exponent: arithmetic here never rounds.
_EXACT = Context(prec=80)


def _iso_exponent(code: str) -> int | None:
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        return None
    # Funds and metals (XAU, XDR...) have no exponent: they are not payable amounts.
    return exponent if isinstance(exponent, int) else None


def currency_exponent(code: str) -> int:
    """Digits after the decimal point for `code`; ValueError if the code is not payable."""
    if code in DIGITAL_ASSETS:
        return DIGITAL_ASSETS[code]
    exponent = _iso_exponent(code)
    if exponent is None:
        raise ValueError(f"unknown currency {code!r}: not an ISO 4217 currency or known asset")
    return exponent


def max_amount_minor(code: str) -> int:
    """The largest amount of `code` in minor units: just under 10**12 major units."""
    ceiling: int = 10 ** (MAX_MAJOR_DIGITS + currency_exponent(code)) - 1
    return ceiling


def is_fiat(code: str) -> bool:
    return code not in DIGITAL_ASSETS and _iso_exponent(code) is not None


def _parse_amount_minor(value: Any, info: ValidationInfo) -> int:
    # bool is an int subclass and floats may carry hidden precision: accept neither.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("amount_minor must be a JSON integer or a string of decimal digits")
    if info.mode == "json" and isinstance(value, int) and value > MAX_SAFE_JSON_INT:
        # Many JSON parsers hold numbers as doubles: past 2^53 they would change the amount.
        raise ValueError("amount_minor above 2^53-1 must be a string of decimal digits")
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("amount_minor string must be decimal digits without sign or zeros")
    # A huge digit string is refused by its length, without converting it.
    amount = int(value) if isinstance(value, int) or len(value) <= _MAX_DIGITS else 0
    if not 0 < amount <= MAX_AMOUNT_MINOR:
        raise ValueError(
            f"amount_minor must be between 1 and {MAX_AMOUNT_MINOR}"
            f" (below 10^{MAX_MAJOR_DIGITS} major units of its currency)"
        )
    return amount


def _serialize_amount_minor(value: int) -> int | str:
    return value if value <= MAX_SAFE_JSON_INT else str(value)


AmountMinor = Annotated[
    int,
    BeforeValidator(_parse_amount_minor),
    PlainSerializer(_serialize_amount_minor),
    WithJsonSchema(
        {
            "description": "Amount in minor units (cents, wei...). A JSON integer up to 2^53-1,"
            " or a string of decimal digits for any amount. Below 10^12 major units of the"
            " currency: at most 10^(12 + exponent) - 1 minor units.",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_JSON_INT},
                {"type": "string", "pattern": f"^[1-9][0-9]{{0,{_MAX_DIGITS - 1}}}$"},
            ],
        }
    ),
]


class Money(BaseModel):
    """An amount in integer minor units of a currency."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    amount_minor: AmountMinor
    currency: Annotated[str, _Field(pattern=r"^[A-Z]{3,5}$")]

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        currency_exponent(code)
        return code

    @model_validator(mode="after")
    def _within_ceiling(self) -> Money:
        ceiling = max_amount_minor(self.currency)
        if self.amount_minor > ceiling:
            raise ValueError(
                f"amount_minor must be between 1 and {ceiling} for {self.currency}"
                f" (below 10^{MAX_MAJOR_DIGITS} {self.currency})"
            )
        return self

    @classmethod
    def from_major(cls, amount: str | Decimal, currency: str) -> Money:
        """Parse a human amount such as "10.50" exactly, refusing more precision than the
        currency allows ("10.505 USD", "100.5 JPY")."""
        exponent = currency_exponent(currency)
        try:
            value = Decimal(amount) if isinstance(amount, str) else amount
        except InvalidOperation as exc:
            raise ValueError(f"{amount!r} is not a decimal amount") from exc
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{amount!r} must be a positive finite amount")
        scaled = value.scaleb(exponent, context=_EXACT)
        if scaled != scaled.to_integral_value(context=_EXACT):
            raise ValueError(
                f"{currency} allows {exponent} decimal places; {amount} has more precision"
            )
        return cls(amount_minor=int(scaled), currency=currency)

    def format(self) -> str:
        """Human form, e.g. "10.50 USD", exact for any exponent."""
        exponent = currency_exponent(self.currency)
        major = Decimal(self.amount_minor).scaleb(-exponent, context=_EXACT)
        return f"{major:.{exponent}f} {self.currency}"

"""Parse charge and payout bodies into typed requests, or raise a 400 ApiError naming the param.

Card data lives only in the transient `CardSource`: the CVC is checked and dropped, and the
number never reaches `repr`, the ledger or the idempotency store (they keep `last4`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sandbox import fields
from sandbox.errors import invalid_request

_MAX_CHARGE_MINOR = 2**63 - 1  # what a provider's int64 column holds
_MAX_PAYOUT_MINOR = 2**256 - 1  # an EVM uint256
_CURRENCY = re.compile(r"[A-Z]{3}")
_CARD_NUMBER = re.compile(r"[0-9]{12,19}")
_CVC = re.compile(r"[0-9]{3,4}")
_DIGITS = re.compile(r"[0-9]{1,78}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

NETWORKS = frozenset({"ethereum", "ethereum-sepolia"})
ASSETS = frozenset({"ETH", "USDC"})

_CHARGE_FIELDS = frozenset({"reference", "amount_minor", "currency", "source", "metadata"})
_TOKEN_FIELDS = frozenset({"type", "token"})
_CARD_FIELDS = frozenset({"type", "number", "exp_month", "exp_year", "cvc"})
_PAYOUT_FIELDS = frozenset(
    {"reference", "network", "asset", "amount_minor", "destination_address", "metadata"}
)


@dataclass(frozen=True, slots=True)
class TokenSource:
    token: str


@dataclass(frozen=True, slots=True)
class CardSource:
    number: str = field(repr=False)
    exp_month: int
    exp_year: int

    @property
    def last4(self) -> str:
        return self.number[-4:]


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    reference: str
    amount_minor: int
    currency: str
    source: TokenSource | CardSource
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    reference: str
    network: str
    asset: str
    amount_minor: int
    destination_address: str
    metadata: Mapping[str, str]


def parse_charge(body: Mapping[str, object]) -> ChargeRequest:
    fields.reject_unknown(body, _CHARGE_FIELDS)
    currency = fields.string(fields.required(body, "currency"), "currency", max_len=3)
    if not _CURRENCY.fullmatch(currency):
        raise invalid_request(
            "parameter_invalid", "currency must be 3 upper-case letters.", "currency"
        )
    return ChargeRequest(
        reference=_reference(body),
        amount_minor=fields.integer(
            fields.required(body, "amount_minor"),
            "amount_minor",
            minimum=1,
            maximum=_MAX_CHARGE_MINOR,
        ),
        currency=currency,
        source=_source(fields.json_object(fields.required(body, "source"), "source")),
        metadata=fields.metadata(body.get("metadata", {})),
    )


def parse_payout(body: Mapping[str, object]) -> PayoutRequest:
    fields.reject_unknown(body, _PAYOUT_FIELDS)
    return PayoutRequest(
        reference=_reference(body),
        network=_choice(body, "network", NETWORKS),
        asset=_choice(body, "asset", ASSETS),
        amount_minor=_payout_amount(fields.required(body, "amount_minor")),
        destination_address=_address(fields.required(body, "destination_address")),
        metadata=fields.metadata(body.get("metadata", {})),
    )


def luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _reference(body: Mapping[str, object]) -> str:
    return fields.string(fields.required(body, "reference"), "reference", max_len=128)


def _choice(body: Mapping[str, object], name: str, allowed: frozenset[str]) -> str:
    value = fields.required(body, name)
    if not isinstance(value, str) or value not in allowed:
        raise invalid_request(
            "parameter_invalid", f"{name} must be one of {sorted(allowed)}.", name
        )
    return value


def _source(source: Mapping[str, object]) -> TokenSource | CardSource:
    kind = fields.required(source, "type", "source.")
    if kind == "token":
        fields.reject_unknown(source, _TOKEN_FIELDS, "source.")
        token = fields.required(source, "token", "source.")
        if not isinstance(token, str) or not token.startswith("tok_") or len(token) > 255:
            raise invalid_request("invalid_token", "No such token.", "source.token")
        return TokenSource(token)
    if kind == "card":
        fields.reject_unknown(source, _CARD_FIELDS, "source.")
        return _card(source)
    raise invalid_request("parameter_invalid", "source.type must be token or card.", "source.type")


def _card(source: Mapping[str, object]) -> CardSource:
    number = fields.required(source, "number", "source.")
    if not isinstance(number, str) or not _CARD_NUMBER.fullmatch(number) or not luhn_valid(number):
        raise invalid_request("invalid_number", "The card number is invalid.", "source.number")
    exp_month = fields.integer(
        fields.required(source, "exp_month", "source."), "source.exp_month", minimum=1, maximum=12
    )
    exp_year = fields.integer(
        fields.required(source, "exp_year", "source."), "source.exp_year", minimum=1, maximum=9999
    )
    cvc = source.get("cvc")
    if cvc is not None and (not isinstance(cvc, str) or not _CVC.fullmatch(cvc)):
        raise invalid_request(
            "parameter_invalid", "source.cvc must be 3 or 4 digits.", "source.cvc"
        )
    return CardSource(number=number, exp_month=exp_month, exp_year=exp_year)


def _payout_amount(value: object) -> int:
    # Wei amounts exceed 2**53, which many JSON clients cannot hold as numbers: accept digits too.
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_PAYOUT_MINOR:
        raise invalid_request(
            "parameter_invalid",
            "amount_minor must be a positive integer, as a JSON integer or a string of digits.",
            "amount_minor",
        )
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise invalid_request(
            "invalid_address",
            "destination_address must be 0x followed by 40 hex digits.",
            "destination_address",
        )
    return value

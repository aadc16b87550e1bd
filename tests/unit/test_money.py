"""Money: integer minor units, exponents per currency, exact parsing and wire form."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from common.money import (
    MAX_AMOUNT_MINOR,
    MAX_SAFE_JSON_INT,
    Money,
    currency_exponent,
    is_fiat,
    max_amount_minor,
)


@pytest.mark.parametrize(
    ("currency", "exponent"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("BHD", 3), ("ETH", 18)]
)
def test_currency_exponent_follows_iso_4217_and_the_asset_table(currency: str, exponent: int):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("currency", ["XAU", "XDR", "ABC", "usd"])
def test_unknown_or_non_payable_currencies_have_no_exponent(currency: str):
    with pytest.raises(ValueError, match="unknown currency"):
        currency_exponent(currency)


def test_fiat_means_iso_4217_payable_currency():
    assert is_fiat("USD")
    assert not is_fiat("ETH")
    assert not is_fiat("XAU")


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [
        ("10.50", "USD", 1050),
        ("10.5", "USD", 1050),
        ("0.01", "USD", 1),
        ("100", "JPY", 100),
        ("1.234", "BHD", 1234),
        ("0.000000000000000001", "ETH", 1),
        ("1.5", "ETH", 1_500_000_000_000_000_000),
        (Decimal("7.25"), "EUR", 725),
    ],
)
def test_from_major_is_exact(major: str | Decimal, currency: str, minor: int):
    assert Money.from_major(major, currency) == Money(amount_minor=minor, currency=currency)


@pytest.mark.parametrize(("major", "currency"), [("10.505", "USD"), ("100.5", "JPY")])
def test_from_major_refuses_more_precision_than_the_currency_has(major: str, currency: str):
    with pytest.raises(ValueError, match="decimal places"):
        Money.from_major(major, currency)


@pytest.mark.parametrize("major", ["0", "0.00", "-1", "-0.01", "NaN", "Infinity", "-Infinity"])
def test_from_major_refuses_non_positive_and_non_finite_amounts(major: str):
    with pytest.raises(ValueError, match="positive finite"):
        Money.from_major(major, "USD")


@pytest.mark.parametrize("major", ["", "ten", "1,00", "1.0.0"])
def test_from_major_refuses_text_that_is_not_a_decimal(major: str):
    with pytest.raises(ValueError, match="not a decimal amount"):
        Money.from_major(major, "USD")


@pytest.mark.parametrize("currency", ["XAU", "ABC"])
def test_from_major_refuses_unknown_or_non_payable_currencies(currency: str):
    with pytest.raises(ValueError, match="unknown currency"):
        Money.from_major("1", currency)


def test_from_major_refuses_excess_precision_in_amounts_beyond_28_digits():
    with pytest.raises(ValueError, match="decimal places"):
        Money.from_major("123456789012345678901234567.891", "USD")


def test_from_major_keeps_every_digit_of_a_large_wei_amount():
    money = Money.from_major("123456789012.123456789012345678", "ETH")
    assert money.amount_minor == 123_456_789_012_123_456_789_012_345_678


def test_amount_minor_is_accepted_as_json_integer_or_digit_string():
    as_int = Money.model_validate_json('{"amount_minor": 1050, "currency": "USD"}')
    as_text = Money.model_validate_json('{"amount_minor": "1050", "currency": "USD"}')
    assert as_int == as_text == Money(amount_minor=1050, currency="USD")


def test_amounts_up_to_2_pow_53_minus_1_serialize_as_json_integers():
    money = Money(amount_minor=MAX_SAFE_JSON_INT, currency="ETH")
    assert json.loads(money.model_dump_json())["amount_minor"] == MAX_SAFE_JSON_INT


@pytest.mark.parametrize("amount", [MAX_SAFE_JSON_INT + 1, 10**24, MAX_AMOUNT_MINOR])
def test_amounts_above_2_pow_53_serialize_as_digit_strings_and_round_trip(amount: int):
    money = Money(amount_minor=amount, currency="ETH")
    wire = money.model_dump_json()
    assert json.loads(wire)["amount_minor"] == str(amount)
    assert Money.model_validate_json(wire) == money


@pytest.mark.parametrize(
    "amount_minor",
    [
        1.0,
        10.5,
        True,
        False,
        0,
        -1,
        "0",
        "0100",
        "-5",
        "+5",
        " 5",
        "5.0",
        "1e3",
        "",
        "１２",
        MAX_AMOUNT_MINOR + 1,
        str(MAX_AMOUNT_MINOR + 1),
        None,
    ],
)
def test_amount_minor_refuses_floats_bools_signs_leading_zeros_and_out_of_range(
    amount_minor: object,
):
    with pytest.raises(ValidationError):
        Money(amount_minor=amount_minor, currency="USD")  # type: ignore[arg-type]


def test_a_json_float_amount_is_refused():
    with pytest.raises(ValidationError, match="JSON integer or a string"):
        Money.model_validate_json('{"amount_minor": 10.0, "currency": "USD"}')


@pytest.mark.parametrize("currency", ["XAU", "ABC", "usd", "US", "TOOLONG"])
def test_money_refuses_unknown_non_payable_or_malformed_currency_codes(currency: str):
    with pytest.raises(ValidationError):
        Money(amount_minor=1, currency=currency)


def test_money_forbids_unknown_fields_and_is_frozen():
    with pytest.raises(ValidationError):
        Money.model_validate({"amount_minor": 1, "currency": "USD", "fx": "1.1"})
    money = Money(amount_minor=1, currency="USD")
    with pytest.raises(ValidationError):
        money.amount_minor = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1050, "USD", "10.50 USD"),
        (1, "USD", "0.01 USD"),
        (100, "JPY", "100 JPY"),
        (1, "BHD", "0.001 BHD"),
        (1, "ETH", "0.000000000000000001 ETH"),
        (2 * 10**18, "ETH", "2.000000000000000000 ETH"),
    ],
)
def test_format_shows_every_minor_digit(amount: int, currency: str, text: str):
    assert Money(amount_minor=amount, currency=currency).format() == text


def test_format_is_exact_for_the_largest_amount():
    money = Money(amount_minor=MAX_AMOUNT_MINOR, currency="ETH")
    assert money.format() == "999999999999.999999999999999999 ETH"


@pytest.mark.parametrize(
    ("currency", "ceiling"),
    [("USD", 10**14 - 1), ("JPY", 10**12 - 1), ("BHD", 10**15 - 1), ("ETH", 10**30 - 1)],
)
def test_each_currency_takes_amounts_below_a_trillion_major_units(currency: str, ceiling: int):
    # Given the ceiling of a currency: just under 10^12 of its major units
    assert max_amount_minor(currency) == ceiling
    # Then the ceiling itself is accepted and one minor unit more is refused, naming the ceiling
    assert Money(amount_minor=ceiling, currency=currency).amount_minor == ceiling
    with pytest.raises(ValidationError, match=f"between 1 and {ceiling}"):
        Money(amount_minor=ceiling + 1, currency=currency)


@pytest.mark.parametrize(
    ("amount_minor", "currency"),
    [("9" * 37, "ETH"), (str(2**63), "USD"), (2**63, "USD"), (str(10**14), "USD")],
)
def test_amounts_a_provider_must_never_see_are_refused(amount_minor: object, currency: str):
    with pytest.raises(ValidationError, match="amount_minor must be between 1 and"):
        Money.model_validate({"amount_minor": amount_minor, "currency": currency})

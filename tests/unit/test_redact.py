"""Masking card numbers in text that leaves the process."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from common.redact import PanMaskingFilter, mask_pans


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "****1111"),
        ("card 4111 1111 1111 1111 refused", "card ****1111 refused"),
        ("card 4111-1111-1111-1111.", "card ****1111."),
        ("amex 378282246310005", "amex ****0005"),
        ("19 digits 6011000990139424009", "19 digits ****4009"),
        ("12 digits 411111111117", "12 digits ****1117"),
        ("a=4242424242424242,b=5555555555554444", "a=****4242,b=****4444"),
    ],
)
def test_luhn_valid_pans_with_spaces_or_dashes_are_masked_to_last4(text: str, masked: str):
    assert mask_pans(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",
        "order 1234567890123",
        "ts 1900000000001",
        "12345678901",
        "41111111111111111111",
        "6011000990139424000",
        "uuid 5b1f9c1e-6a4f-4f5e-9d1b-1a2b3c4d5e6f",
    ],
)
def test_numbers_that_are_not_luhn_valid_pans_are_left_alone(text: str):
    assert mask_pans(text) == text


def test_a_pan_preceded_by_another_digit_group_is_still_masked():
    assert "4111 1111 1111 1111" not in mask_pans("qty 12 4111 1111 1111 1111")


@pytest.mark.parametrize(
    "identifier",
    [
        # A payment id whose last two groups read as a Luhn-valid 16-digit number
        "083fa446-2206-47ff-8762-729815061622",
        # An Ethereum transaction hash with a long run of digits
        "0x4111111111111111aa00000000000000000000000000000000000000000000bb",
    ],
)
def test_identifiers_that_contain_digit_groups_are_left_whole(identifier: str):
    text = f"payment {identifier} succeeded; card 4111 1111 1111 1111"
    assert mask_pans(text) == f"payment {identifier} succeeded; card ****1111"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PanMaskingFilter())
    logger = logging.getLogger("paymq.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def test_the_logging_filter_masks_pans_in_message_and_arguments(
    log: tuple[logging.Logger, io.StringIO],
):
    logger, stream = log
    logger.info("charging %s for %s", "4111 1111 1111 1111", "order-7")
    logger.info("card 5555555555554444 in the template")
    assert stream.getvalue() == "charging ****1111 for order-7\ncard ****4444 in the template\n"


def test_the_logging_filter_masks_pans_in_context_fields_and_leaves_trace_ids(
    log: tuple[logging.Logger, io.StringIO],
):
    # Given a record whose context (ids, extra fields) carries a card number
    logger, _ = log
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        "f",
        1,
        "refused",
        (),
        None,
        extra={
            "message_id": "m-4111-1111-1111-1111",
            "merchant_reference": "5555555555554444",
            "trace_id": "4111111111111111aaaaaaaaaaaaaaaa",
            "attempts": 4111111111111111,
        },
    )
    # When the filter runs
    assert PanMaskingFilter().filter(record)
    # Then every text field is masked; the tracer's ids and numbers are left as they are
    assert record.__dict__["message_id"] == "m-****1111"
    assert record.__dict__["merchant_reference"] == "****4444"
    assert record.__dict__["trace_id"] == "4111111111111111aaaaaaaaaaaaaaaa"
    assert record.__dict__["attempts"] == 4111111111111111


def test_the_logging_filter_leaves_other_records_untouched(
    log: tuple[logging.Logger, io.StringIO],
):
    logger, stream = log
    record = logger.makeRecord(logger.name, logging.INFO, "f", 1, "paid %d", (1050,), None)
    assert PanMaskingFilter().filter(record)
    assert (record.msg, record.args) == ("paid %d", (1050,))
    logger.info("paid %d cents", 1050)
    assert stream.getvalue() == "paid 1050 cents\n"


def test_the_logging_filter_masks_pans_in_logged_exceptions(
    log: tuple[logging.Logger, io.StringIO],
):
    logger, stream = log
    try:
        raise ValueError("card 4111111111111111 refused")
    except ValueError:
        logger.exception("charge failed")
    assert "4111111111111111" not in stream.getvalue()

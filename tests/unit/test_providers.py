"""The sandbox provider client's pure part: what each HTTP answer means for the payment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import (
    OutcomeUnknown,
    PaymentDeclined,
    ProviderRejected,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from workers.providers.sandbox import _payout_receipt, interpret


def error_body(code: str, decline_code: Any = None, message: str = "nope") -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if decline_code is not None:
        error["decline_code"] = decline_code
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize("status", [200, 201])
def test_a_success_answer_is_returned_as_is(status: int):
    answer = {"id": "ch_1", "status": "succeeded", "last4": "4242"}
    assert interpret(status, json.dumps(answer).encode(), None) == answer


@pytest.mark.parametrize("data", [b"", b"<html>", b"[]", b'{"status": "ok"}', b"\xff"])
def test_a_success_answer_without_a_readable_id_is_an_unknown_outcome(data: bytes):
    with pytest.raises(ProviderServerError) as caught:
        interpret(201, data, None)
    assert isinstance(caught.value, OutcomeUnknown)


def test_an_unreadable_success_body_keeps_the_parse_error_as_its_cause():
    with pytest.raises(ProviderServerError) as caught:
        interpret(200, b"<html>", None)
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_402_is_a_decline_with_the_providers_decline_code():
    with pytest.raises(PaymentDeclined) as caught:
        interpret(402, error_body("card_declined", "insufficient_funds", "Insufficient"), None)
    assert (caught.value.code, str(caught.value)) == ("insufficient_funds", "Insufficient")


def test_a_402_without_decline_code_uses_the_error_code():
    with pytest.raises(PaymentDeclined) as caught:
        interpret(402, error_body("card_declined"), None)
    assert caught.value.code == "card_declined"


def test_a_402_with_an_unreadable_body_is_still_a_decline():
    with pytest.raises(PaymentDeclined) as caught:
        interpret(402, b"declined", None)
    assert caught.value.code == "unknown"


def test_a_numeric_decline_code_is_carried_as_text():
    with pytest.raises(PaymentDeclined) as caught:
        interpret(402, error_body("card_declined", 51), None)
    assert caught.value.code == "51"


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("7", 7.0), ("0.5", 0.5), (None, 1.0), ("soon", 1.0), ("-3", 0.0)],
)
def test_a_429_is_rate_limited_with_its_retry_after(retry_after: str | None, seconds: float):
    with pytest.raises(RateLimited) as caught:
        interpret(429, error_body("rate_limited"), retry_after)
    assert caught.value.retry_after_s == seconds


def test_a_503_processing_error_surely_had_no_effect():
    with pytest.raises(ProviderUnavailable) as caught:
        interpret(503, error_body("processing_error"), None)
    assert caught.value.code == "processing_error"


@pytest.mark.parametrize(
    ("status", "data"),
    [
        (500, error_body("internal")),
        (502, b"<html>bad gateway</html>"),
        (503, error_body("overloaded")),
        (503, b""),
        (504, b""),
    ],
)
def test_other_5xx_answers_are_unknown_outcomes(status: int, data: bytes):
    with pytest.raises(ProviderServerError) as caught:
        interpret(status, data, None)
    assert isinstance(caught.value, OutcomeUnknown)


def test_a_409_means_the_key_is_still_processing_and_the_outcome_is_unknown():
    with pytest.raises(OutcomeUnknown) as caught:
        interpret(409, error_body("idempotency_in_progress"), None)
    assert caught.value.code == "idempotency_in_progress"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_answers_are_refusals_of_the_request(status: int):
    with pytest.raises(ProviderRejected) as caught:
        interpret(status, error_body("invalid_request"), None)
    assert caught.value.code == "invalid_request"


@pytest.mark.parametrize("status", [204, 301, 304])
def test_an_unexpected_success_status_is_an_unknown_outcome_not_a_refusal(status: int):
    with pytest.raises(OutcomeUnknown):
        interpret(status, b'{"id": "ch_1"}', None)


def test_an_accepted_payout_is_a_pending_receipt():
    answer = interpret(202, b'{"id": "po_1", "status": "pending", "tx_hash": "0xab"}', None)
    receipt = _payout_receipt(answer)
    assert (receipt.reference, receipt.settled) == ("0xab", False)

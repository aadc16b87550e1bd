# The SDK's exception constructors carry no annotations; they are called here as the SDK calls them.
# mypy: disable-error-code="no-untyped-call"
"""What Stripe's answers and errors mean for a payment (workers/providers/stripe_outcomes.py).

Pure: PaymentIntents are plain dicts, errors are the SDK's own exception objects, built the way
the SDK builds them from an HTTP answer. No socket is opened.
"""

from __future__ import annotations

import http.client
import logging
import socket
from typing import Any, cast

import pytest
import requests
import stripe
import urllib3.exceptions

from common.errors import (
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    ProviderConnectionLost,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from common.models import PayerAction
from workers.providers.base import ProviderReceipt
from workers.providers.stripe_outcomes import error_of, found, receipt_of, stripe_errors


def intent(status: str, intent_id: str = "pi_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "client_secret": f"{intent_id}_secret_abc",
        **fields,
    }


# --- receipt_of ------------------------------------------------------------------------------


def test_a_succeeded_intent_is_a_settled_receipt_named_by_the_intent_id() -> None:
    assert receipt_of(intent("succeeded")) == ProviderReceipt("stripe", "pi_1", settled=True)


@pytest.mark.parametrize("status", ["processing", "requires_capture", "requires_confirmation"])
def test_an_intent_still_in_progress_is_a_pending_receipt_without_payer_action(status: str) -> None:
    receipt = receipt_of(intent(status))
    assert receipt == ProviderReceipt("stripe", "pi_1", settled=False, action=None)


def test_an_intent_waiting_for_the_stripe_sdk_asks_the_payer_with_its_client_secret() -> None:
    answer = intent("requires_action", next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})
    receipt = receipt_of(answer)
    assert receipt.settled is False
    assert receipt.action == PayerAction(type="sdk", client_secret="pi_1_secret_abc")


def test_an_intent_waiting_for_a_redirect_sends_the_payer_to_its_url() -> None:
    url = "https://hooks.stripe.com/3d_secure_2/authenticate/pi_1"
    answer = intent(
        "requires_action",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": url}},
    )
    receipt = receipt_of(answer)
    assert receipt.settled is False
    assert receipt.action == PayerAction(type="redirect", url=url)


def test_the_card_last4_comes_from_an_expanded_payment_method() -> None:
    answer = intent("succeeded", payment_method={"id": "pm_1", "card": {"last4": "4242"}})
    assert receipt_of(answer).card_last4 == "4242"


def test_the_card_last4_given_by_the_caller_wins_over_the_intent() -> None:
    answer = intent("succeeded", payment_method={"id": "pm_1", "card": {"last4": "4242"}})
    assert receipt_of(answer, card_last4="0005").card_last4 == "0005"


def test_an_intent_with_only_a_payment_method_id_has_no_card_last4() -> None:
    assert receipt_of(intent("succeeded", payment_method="pm_1")).card_last4 is None


def test_an_intent_back_to_requires_payment_method_is_declined_with_the_decline_code() -> None:
    answer = intent(
        "requires_payment_method",
        last_payment_error={
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    with pytest.raises(PaymentDeclined) as caught:
        receipt_of(answer)
    assert caught.value.code == "insufficient_funds"
    assert caught.value.provider_reference == "pi_1"
    assert str(caught.value) == "Your card has insufficient funds."


def test_a_declined_intent_without_decline_code_is_declined_with_the_error_code() -> None:
    answer = intent("requires_payment_method", last_payment_error={"code": "expired_card"})
    with pytest.raises(PaymentDeclined) as caught:
        receipt_of(answer)
    assert (caught.value.code, caught.value.provider_reference) == ("expired_card", "pi_1")


def test_a_declined_intent_without_any_error_is_declined_as_payment_failed() -> None:
    with pytest.raises(PaymentDeclined) as caught:
        receipt_of(intent("requires_payment_method", last_payment_error=None))
    assert caught.value.code == "payment_failed"


def test_a_canceled_intent_is_declined_as_canceled() -> None:
    with pytest.raises(PaymentDeclined) as caught:
        receipt_of(intent("canceled", cancellation_reason="abandoned"))
    assert (caught.value.code, caught.value.provider_reference) == ("canceled", "pi_1")
    assert "abandoned" in str(caught.value)


@pytest.mark.parametrize("status", ["requires_source", "something_new", None])
def test_an_unknown_status_is_an_unknown_outcome_never_a_decline(status: str | None) -> None:
    answer = intent("succeeded")
    answer["status"] = status
    with pytest.raises(ProviderServerError) as caught:
        receipt_of(answer)
    assert isinstance(caught.value, OutcomeUnknown)


# --- found -----------------------------------------------------------------------------------


def test_no_intent_found_is_none() -> None:
    assert found([]) is None


def test_among_several_intents_the_succeeded_one_is_the_answer() -> None:
    intents = [
        intent("requires_payment_method", "pi_declined", last_payment_error={"code": "x"}),
        intent("succeeded", "pi_paid"),
        intent("processing", "pi_processing"),
    ]
    assert found(intents) == ProviderReceipt("stripe", "pi_paid", settled=True)


def test_an_intent_waiting_for_the_payer_beats_a_declined_one() -> None:
    intents = [
        intent("requires_payment_method", "pi_declined", last_payment_error={"code": "x"}),
        intent("requires_action", "pi_3ds", next_action={"type": "use_stripe_sdk"}),
    ]
    receipt = found(intents)
    assert receipt is not None
    assert (receipt.reference, receipt.settled) == ("pi_3ds", False)
    assert receipt.action == PayerAction(type="sdk", client_secret="pi_3ds_secret_abc")


def test_a_lone_declined_intent_found_is_a_decline() -> None:
    with pytest.raises(PaymentDeclined) as caught:
        found([intent("requires_payment_method", last_payment_error={"code": "card_declined"})])
    assert caught.value.code == "card_declined"


def test_two_succeeded_intents_for_one_payment_are_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metadata = {"paymq_payment_id": "pay-1"}
    intents = [
        intent("succeeded", "pi_a", metadata=metadata),
        intent("succeeded", "pi_b", metadata=metadata),
    ]
    with caplog.at_level(logging.ERROR, logger="paymq.stripe"):
        receipt = found(intents)
    assert receipt is not None
    assert receipt.settled
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "pay-1" in record.getMessage()
    assert "pi_a, pi_b" in record.getMessage()


# --- error_of: answers -----------------------------------------------------------------------


def card_error(error: dict[str, Any], message: str = "Your card was declined.") -> stripe.CardError:
    """A CardError as the SDK builds it from a 402 answer: its `.error` comes from json_body."""
    body = {"error": {"type": "card_error", "message": message, **error}}
    return stripe.CardError(
        message, error.get("param"), error.get("code"), http_status=402, json_body=body
    )


def test_a_card_error_is_a_decline_with_its_decline_code_over_its_code() -> None:
    exc = card_error(
        {"code": "card_declined", "decline_code": "insufficient_funds"},
        message="Your card has insufficient funds.",
    )
    error = error_of(exc)
    assert isinstance(error, PaymentDeclined)
    assert error.code == "insufficient_funds"
    assert str(error) == "Your card has insufficient funds."


def test_a_card_error_without_decline_code_is_a_decline_with_its_code() -> None:
    error = error_of(card_error({"code": "expired_card"}))
    assert isinstance(error, PaymentDeclined)
    assert error.code == "expired_card"


def test_a_card_error_without_a_json_body_is_still_a_decline_with_its_code() -> None:
    exc = stripe.CardError("Declined.", None, "card_declined", http_status=402)
    assert exc.error is None
    error = error_of(exc)
    assert isinstance(error, PaymentDeclined)
    assert (error.code, error.provider_reference) == ("card_declined", None)


def test_a_card_error_names_the_payment_intent_it_declined() -> None:
    exc = card_error(
        {
            "code": "card_declined",
            "decline_code": "do_not_honor",
            "payment_intent": {
                "id": "pi_declined",
                "object": "payment_intent",
                "status": "requires_payment_method",
            },
        }
    )
    error = error_of(exc)
    assert isinstance(error, PaymentDeclined)
    assert (error.code, error.provider_reference) == ("do_not_honor", "pi_declined")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": "2.5"}, 2.5, id="lowercase-fraction"),
        pytest.param({}, 1.0, id="absent"),
        pytest.param({"Retry-After": "soon"}, 1.0, id="unreadable"),
        pytest.param({"Retry-After": "-3"}, 0.0, id="negative"),
    ],
)
def test_a_rate_limit_error_is_rate_limited_for_its_retry_after(
    headers: dict[str, str], seconds: float
) -> None:
    exc = stripe.RateLimitError("Too many requests", http_status=429, headers=headers)
    error = error_of(exc)
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == seconds


@pytest.mark.parametrize(
    ("exc_type", "status"),
    [(stripe.AuthenticationError, 401), (stripe.PermissionError, 403)],
)
def test_a_refused_api_key_is_a_provider_unavailable_auth_failure(
    exc_type: type[stripe.StripeError], status: int
) -> None:
    error = error_of(exc_type("Invalid API Key provided", http_status=status))
    assert type(error) is ProviderUnavailable
    assert error.code == "provider_auth_failed"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "parameter_missing"), (404, "resource_missing")],
)
def test_an_invalid_request_is_rejected_with_stripes_code(status: int, code: str) -> None:
    exc = stripe.InvalidRequestError(
        "Missing required param", "amount", code=code, http_status=status
    )
    error = error_of(exc)
    assert type(error) is ProviderRejected
    assert error.code == code


def test_an_invalid_request_without_code_is_rejected_as_invalid_request() -> None:
    error = error_of(stripe.InvalidRequestError("Bad", None, http_status=400))
    assert (type(error), error.code) == (ProviderRejected, "invalid_request")


def test_an_idempotency_error_is_an_unknown_outcome() -> None:
    error = error_of(stripe.IdempotencyError("Keys reused", http_status=400))
    assert type(error) is ProviderServerError
    assert isinstance(error, OutcomeUnknown)


@pytest.mark.parametrize("status", [500, 502, 503, 409, None])
def test_an_api_error_is_an_unknown_outcome(status: int | None) -> None:
    error = error_of(stripe.APIError("Something went wrong", http_status=status))
    assert type(error) is ProviderServerError


# --- error_of: connection errors, by their cause ----------------------------------------------


def connection_error(cause: BaseException | None) -> stripe.APIConnectionError:
    """An APIConnectionError as the SDK's RequestsClient raises it: `from` the requests error."""
    try:
        raise stripe.APIConnectionError("Unexpected error communicating with Stripe.") from cause
    except stripe.APIConnectionError as exc:
        return exc


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises for a refused connection (urllib3 2.x, retries exhausted)."""
    reason = urllib3.exceptions.NewConnectionError(
        cast(Any, None), "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(cast(Any, None), "/v1/payment_intents", reason=reason)
    )


def unresolvable() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.NameResolutionError(
        "api.stripe.invalid", cast(Any, None), socket.gaierror(-2, "Name or service not known")
    )
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(cast(Any, None), "/v1/payment_intents", reason=reason)
    )


def aborted(why: Exception) -> requests.exceptions.ConnectionError:
    """What requests raises when the connection breaks after the request went out."""
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", why)
    )


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(refused(), id="refused"),
        pytest.param(unresolvable(), id="dns"),
        pytest.param(requests.exceptions.ConnectTimeout(), id="connect-timeout"),
        pytest.param(requests.exceptions.SSLError(), id="tls"),
    ],
)
def test_a_connection_never_made_is_provider_unavailable(cause: Exception) -> None:
    assert type(error_of(connection_error(cause))) is ProviderUnavailable


def test_a_read_timeout_is_a_provider_timeout() -> None:
    error = error_of(connection_error(requests.exceptions.ReadTimeout()))
    assert type(error) is ProviderTimeout


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param(aborted(http.client.RemoteDisconnected("closed")), id="closed"),
        pytest.param(aborted(ConnectionResetError(104, "reset by peer")), id="reset"),
        pytest.param(requests.exceptions.ChunkedEncodingError(), id="truncated-body"),
    ],
)
def test_a_connection_broken_after_sending_is_connection_lost(cause: Exception) -> None:
    assert type(error_of(connection_error(cause))) is ProviderConnectionLost


@pytest.mark.parametrize(
    "cause",
    [pytest.param(ValueError("odd"), id="foreign-cause"), pytest.param(None, id="no-cause")],
)
def test_a_connection_error_of_unknown_cause_is_an_unknown_outcome(cause: Exception | None) -> None:
    error = error_of(connection_error(cause))
    assert type(error) is OutcomeUnknown


def test_every_mapped_error_is_one_of_ours() -> None:
    samples: list[stripe.StripeError] = [
        card_error({"code": "card_declined"}),
        stripe.RateLimitError("slow down", http_status=429),
        stripe.AuthenticationError("no", http_status=401),
        stripe.InvalidRequestError("bad", None, http_status=400),
        stripe.IdempotencyError("again", http_status=400),
        stripe.APIError("boom", http_status=500),
        connection_error(requests.exceptions.ReadTimeout()),
        stripe.StripeError("bare"),
    ]
    assert all(isinstance(error_of(exc), PaymqError) for exc in samples)


@pytest.mark.parametrize(
    "exc",
    [
        card_error({"code": "card_declined"}),
        stripe.RateLimitError("slow down", http_status=429),
        stripe.APIError("boom", http_status=500),
        connection_error(requests.exceptions.ReadTimeout()),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_every_translation_keeps_stripes_error_as_its_cause(exc: stripe.StripeError) -> None:
    with pytest.raises(PaymqError) as caught, stripe_errors():
        raise exc
    assert type(caught.value) is type(error_of(exc))
    assert caught.value.__cause__ is exc


def test_what_is_not_a_stripe_error_goes_through_untouched() -> None:
    ours = ValueError("a bug of ours")
    with pytest.raises(ValueError, match="a bug of ours") as caught, stripe_errors():
        raise ours
    assert caught.value is ours


def test_an_intent_without_an_id_is_an_unknown_outcome() -> None:
    with pytest.raises(ProviderServerError):
        receipt_of({"object": "payment_intent", "status": "succeeded"})


def test_an_intent_requiring_action_without_a_client_secret_is_pending_without_an_action() -> None:
    receipt = receipt_of(
        intent("requires_action", next_action={"type": "use_stripe_sdk"}, client_secret=None)
    )
    assert (receipt.settled, receipt.action) == (False, None)


def test_an_unknown_status_outranks_a_decline_whatever_the_order() -> None:
    declined = intent("requires_payment_method", "pi_old")
    unknown = intent("something_new", "pi_new")
    for order in ([declined, unknown], [unknown, declined]):
        with pytest.raises(ProviderServerError):
            found(order)

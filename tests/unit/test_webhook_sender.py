"""What a failed webhook attempt counts as (webhooks/sender.py): requests' exceptions read in one
place, each outcome keeping the exception behind it as its cause."""

from __future__ import annotations

import socket

import pytest
import requests

from common.clock import SystemClock
from common.webhooks import new_webhook_secret
from webhooks.addresses import AddressCategory, AddressPolicy
from webhooks.endpoints import Endpoint
from webhooks.sender import AttemptOutcome, AttemptResult, Sender, failure_of
from webhooks.transport import AddressGuard, AddressNotAllowed


@pytest.mark.parametrize(
    ("exc", "result", "error"),
    [
        (AddressNotAllowed(AddressCategory.LOOPBACK), AttemptResult.ADDRESS_NOT_ALLOWED, None),
        (requests.ConnectTimeout(), AttemptResult.TIMEOUT, "ConnectTimeout"),
        (requests.ReadTimeout(), AttemptResult.TIMEOUT, "ReadTimeout"),
        (requests.ConnectionError(), AttemptResult.CONNECTION_ERROR, "ConnectionError"),
        (requests.exceptions.SSLError(), AttemptResult.CONNECTION_ERROR, "SSLError"),
        (requests.exceptions.ChunkedEncodingError(), AttemptResult.ERROR, "ChunkedEncodingError"),
        (requests.exceptions.InvalidURL(), AttemptResult.ERROR, "InvalidURL"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_each_failure_counts_as_its_most_specific_result(
    exc: AddressNotAllowed | requests.RequestException, result: AttemptResult, error: str | None
) -> None:
    counted, reason = failure_of(exc)
    assert counted is result
    assert reason == (error or "address not allowed: loopback")


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def attempt(policy: AddressPolicy, url: str) -> AttemptOutcome:
    sender = Sender(
        SystemClock(),
        user_agent="test",
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        guard=AddressGuard(policy),
    )
    try:
        return sender.attempt(Endpoint("shop", url, new_webhook_secret()), "event-1", b"{}")
    finally:
        sender.close()


def test_a_refused_connection_keeps_requests_error_as_the_outcomes_cause() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks"
    outcome = attempt(AddressPolicy(allow_private_networks=True), url)
    assert (outcome.result, outcome.error) == (AttemptResult.CONNECTION_ERROR, "ConnectionError")
    assert isinstance(outcome.cause, requests.ConnectionError)


def test_a_refused_address_keeps_the_guards_refusal_as_the_outcomes_cause() -> None:
    outcome = attempt(AddressPolicy(), f"http://127.0.0.1:{closed_port()}/hooks")
    assert outcome.result is AttemptResult.ADDRESS_NOT_ALLOWED
    assert isinstance(outcome.cause, AddressNotAllowed)


def test_the_cause_is_no_part_of_an_outcomes_value() -> None:
    first = AttemptOutcome(AttemptResult.TIMEOUT, "ReadTimeout", None, 5, requests.ReadTimeout())
    second = AttemptOutcome(AttemptResult.TIMEOUT, "ReadTimeout", None, 5, requests.ReadTimeout())
    assert first == second
    assert "cause" not in repr(first)

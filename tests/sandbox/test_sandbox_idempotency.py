"""Idempotency over real HTTP: replays, conflicts, and which answers are (not) kept."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from sandbox.client import SandboxControl


def charge_body(test_value: str = "tok_visa", **overrides: Any) -> dict[str, Any]:
    body = {
        "reference": f"pay-{uuid.uuid4()}",
        "amount_minor": 500,
        "currency": "USD",
        "source": {"type": "token", "token": test_value},
    }
    return body | overrides


def post(url: str, body: object, key: str | None, path: str = "/v1/charges") -> requests.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return requests.post(url + path, json=body, headers=headers, timeout=5)


def test_same_key_same_body_replays_the_stored_answer_byte_for_byte(
    sandbox_url: str, control: SandboxControl
) -> None:
    body, key = charge_body(), str(uuid.uuid4())
    first = post(sandbox_url, body, key)
    second = post(sandbox_url, body, key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.content == first.content
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(control.effects(body["reference"])) == 1


def test_same_key_with_reordered_keys_is_the_same_request(sandbox_url: str) -> None:
    body, key = charge_body(), str(uuid.uuid4())
    first = post(sandbox_url, body, key)
    second = post(sandbox_url, dict(reversed(body.items())), key)
    assert second.status_code == 201
    assert second.content == first.content


def test_same_key_different_body_is_rejected_with_422(
    sandbox_url: str, control: SandboxControl
) -> None:
    body, key = charge_body(), str(uuid.uuid4())
    assert post(sandbox_url, body, key).status_code == 201
    response = post(sandbox_url, body | {"amount_minor": 501}, key)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_reused")
    assert len(control.effects(body["reference"])) == 1


def test_same_key_while_first_request_is_in_flight_is_rejected_with_409(
    sandbox_url: str, control: SandboxControl
) -> None:
    control.set_latency(800)  # both requests arrive while the first sleeps its latency
    body, key = charge_body(), str(uuid.uuid4())
    barrier = threading.Barrier(2)

    def send(_: int) -> requests.Response:
        barrier.wait(timeout=5)
        return post(sandbox_url, body, key)

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(send, range(2)))
    assert sorted(response.status_code for response in responses) == [201, 409]
    [conflict] = [response.json()["error"] for response in responses if response.status_code == 409]
    assert (conflict["type"], conflict["code"]) == ("idempotency_error", "request_in_progress")
    assert len(control.effects(body["reference"])) == 1


@pytest.mark.parametrize("key", [None, ""])
def test_missing_idempotency_key_is_rejected_with_400(sandbox_url: str, key: str | None) -> None:
    response = post(sandbox_url, charge_body(), key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "idempotency_key_missing")


def test_idempotency_key_longer_than_255_characters_is_rejected_with_400(sandbox_url: str) -> None:
    assert post(sandbox_url, charge_body(), "k" * 255).status_code == 201
    response = post(sandbox_url, charge_body(), "k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"


def test_decline_is_final_and_replayed(sandbox_url: str) -> None:
    body, key = charge_body("tok_do_not_honor"), str(uuid.uuid4())
    first = post(sandbox_url, body, key)
    second = post(sandbox_url, body, key)
    assert (first.status_code, second.status_code) == (402, 402)
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"


def test_processing_error_is_not_stored_so_a_retry_tries_again(sandbox_url: str) -> None:
    body, key = charge_body("tok_processing_error"), str(uuid.uuid4())
    for _ in range(2):
        response = post(sandbox_url, body, key)
        assert response.status_code == 503
        assert "Idempotent-Replayed" not in response.headers


def test_validation_error_is_not_stored_so_the_key_can_carry_a_fixed_body(
    sandbox_url: str, control: SandboxControl
) -> None:
    body, key = charge_body(), str(uuid.uuid4())
    assert post(sandbox_url, body | {"currency": "usd"}, key).status_code == 400
    assert post(sandbox_url, body, key).status_code == 201
    assert len(control.effects(body["reference"])) == 1


def test_keys_are_scoped_per_endpoint(sandbox_url: str, control: SandboxControl) -> None:
    key, reference = str(uuid.uuid4()), f"pay-{uuid.uuid4()}"
    payout = {
        "reference": reference,
        "network": "ethereum",
        "asset": "ETH",
        "amount_minor": 10,
        "destination_address": "0x" + "ab" * 20,
    }
    assert post(sandbox_url, charge_body(reference=reference), key).status_code == 201
    assert post(sandbox_url, payout, key, path="/v1/payouts").status_code == 201
    assert [effect["kind"] for effect in control.effects(reference)] == ["charge", "payout"]

"""Fault injection over real HTTP: each action, matching, counting, and what a retry then sees."""

import uuid
from typing import Any

import pytest
import requests

from sandbox.client import SandboxControl, SandboxControlError


@pytest.fixture
def body() -> dict[str, Any]:
    return {
        "reference": f"pay-{uuid.uuid4()}",
        "amount_minor": 700,
        "currency": "GBP",
        "source": {"type": "card", "number": "4242424242424242", "exp_month": 1, "exp_year": 2099},
    }


def post(url: str, body: object, key: str, timeout_s: float = 5) -> requests.Response:
    return requests.post(
        url + "/v1/charges", json=body, headers={"Idempotency-Key": key}, timeout=timeout_s
    )


def test_error_before_effect_answers_the_status_and_moves_no_money(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("error_before_effect", reference=body["reference"], status=503)
    key = str(uuid.uuid4())
    response = post(sandbox_url, body, key)
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "api_error",
        "code": "injected_error",
        "message": "Injected fault.",
    }
    assert control.effects(body["reference"]) == []
    retry = post(sandbox_url, body, key)
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert len(control.effects(body["reference"])) == 1


def test_error_after_effect_moves_money_and_a_retry_gets_the_stored_success(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("error_after_effect", reference=body["reference"], status=502)
    key = str(uuid.uuid4())
    response = post(sandbox_url, body, key)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "injected_error"
    [effect] = control.effects(body["reference"])
    retry = post(sandbox_url, body, key)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == effect["id"]
    assert len(control.effects(body["reference"])) == 1


def test_timeout_after_effect_moves_money_while_the_client_times_out(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("timeout_after_effect", reference=body["reference"], delay_s=2)
    key = str(uuid.uuid4())
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(sandbox_url, body, key, timeout_s=0.5)
    [effect] = control.effects(body["reference"])
    retry = post(sandbox_url, body, key)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == effect["id"]


def test_reset_before_effect_drops_the_connection_and_moves_no_money(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("reset_before_effect", reference=body["reference"])
    key = str(uuid.uuid4())
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sandbox_url, body, key)
    assert control.effects(body["reference"]) == []
    assert post(sandbox_url, body, key).status_code == 201
    assert len(control.effects(body["reference"])) == 1


def test_reset_after_effect_drops_the_connection_after_moving_money(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("reset_after_effect", reference=body["reference"])
    key = str(uuid.uuid4())
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sandbox_url, body, key)
    [effect] = control.effects(body["reference"])
    retry = post(sandbox_url, body, key)
    assert retry.status_code == 201
    assert retry.json()["id"] == effect["id"]


def test_rate_limit_answers_429_with_retry_after_and_moves_no_money(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("rate_limit", reference=body["reference"], retry_after_s=7)
    response = post(sandbox_url, body, str(uuid.uuid4()))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
    assert control.effects(body["reference"]) == []


def test_rule_applies_to_as_many_requests_as_times_then_stays_listed_at_zero(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    rule = control.add_fault("error_after_effect", times=2, reference=body["reference"])
    assert (rule["times"], rule["remaining"]) == (2, 2)
    key = str(uuid.uuid4())
    statuses = [post(sandbox_url, body, key).status_code for _ in range(3)]
    assert statuses == [500, 500, 201]
    assert len(control.effects(body["reference"])) == 1
    assert [(r["id"], r["remaining"]) for r in control.faults()] == [(rule["id"], 0)]


def test_rule_for_another_path_or_reference_does_not_apply(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("error_before_effect", path="/v1/payouts")
    control.add_fault("error_before_effect", reference="someone-else")
    assert post(sandbox_url, body, str(uuid.uuid4())).status_code == 201
    assert [rule["remaining"] for rule in control.faults()] == [1, 1]


def test_first_matching_rule_in_creation_order_applies(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("rate_limit", path="/v1/charges")
    control.add_fault("error_before_effect", reference=body["reference"])
    assert post(sandbox_url, body, str(uuid.uuid4())).status_code == 429
    assert post(sandbox_url, body, str(uuid.uuid4())).status_code == 500


def test_clearing_faults_removes_every_rule(
    sandbox_url: str, control: SandboxControl, body: dict[str, Any]
) -> None:
    control.add_fault("error_before_effect", times=5)
    control.clear_faults()
    assert control.faults() == []
    assert post(sandbox_url, body, str(uuid.uuid4())).status_code == 201


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "explode"},
        {"action": "rate_limit", "times": 0},
        {"action": "error_before_effect", "status": 501},
        {"action": "error_before_effect", "path": "/v1/effects"},
        {"action": "timeout_after_effect", "delay_s": -1},
        {"action": "rate_limit", "colour": "red"},
        {},
    ],
)
def test_invalid_fault_rule_is_rejected_with_400(sandbox_url: str, rule: dict[str, Any]) -> None:
    response = requests.post(sandbox_url + "/_sandbox/faults", json=rule, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_control_client_raises_with_the_error_body_on_a_rejected_rule(
    control: SandboxControl,
) -> None:
    with pytest.raises(SandboxControlError, match="parameter_invalid") as raised:
        control.add_fault("error_before_effect", status=418)
    assert raised.value.status == 400

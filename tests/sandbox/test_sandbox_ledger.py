"""The ledger and lookups over real HTTP: effects by reference, objects by id, reset, config."""

import uuid
from typing import Any

import pytest
import requests

from sandbox.client import SandboxControl


def create(url: str, kind: str, reference: str, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": reference, "amount_minor": 42}
    if kind == "charges":
        body |= {"currency": "EUR", "source": {"type": "token", "token": "tok_visa"}}
    else:
        body |= {"network": "ethereum", "asset": "ETH", "destination_address": "0x" + "1" * 40}
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    response = requests.post(f"{url}/v1/{kind}", json=body, headers=headers, timeout=5)
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


def get(url: str, path: str, **params: str) -> requests.Response:
    return requests.get(url + path, params=params, timeout=5)


def test_health_answers_ok(control: SandboxControl) -> None:
    assert control.health() == {"status": "ok"}


def test_effects_list_every_movement_of_money_and_filter_by_reference(
    sandbox_url: str, control: SandboxControl
) -> None:
    charge = create(sandbox_url, "charges", "ref-a", key="key-a")
    payout = create(sandbox_url, "payouts", "ref-b")
    create(sandbox_url, "charges", "ref-a", key="key-a")  # a replay is not a new effect
    assert [effect["id"] for effect in control.effects()] == [charge["id"], payout["id"]]
    assert control.effects("ref-a") == [
        {
            "id": charge["id"],
            "kind": "charge",
            "reference": "ref-a",
            "amount_minor": 42,
            "currency": "EUR",
            "idempotency_key": "key-a",
            "created_at": charge["created_at"],
        }
    ]
    assert control.effects("ref-b")[0]["amount_minor"] == "42"
    assert control.effects("nobody") == []
    assert get(sandbox_url, "/v1/effects").json()["count"] == 2


@pytest.mark.parametrize("kind", ["charges", "payouts"])
def test_object_is_found_by_id_with_the_creation_answer(sandbox_url: str, kind: str) -> None:
    created = create(sandbox_url, kind, f"ref-{uuid.uuid4()}")
    response = get(sandbox_url, f"/v1/{kind}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize(("kind", "unknown_id"), [("charges", "ch_0"), ("payouts", "po_0")])
def test_unknown_id_is_404_resource_missing(sandbox_url: str, kind: str, unknown_id: str) -> None:
    response = get(sandbox_url, f"/v1/{kind}/{unknown_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_charge_id_is_not_found_as_a_payout(sandbox_url: str) -> None:
    charge = create(sandbox_url, "charges", "ref-x")
    assert get(sandbox_url, f"/v1/payouts/{charge['id']}").status_code == 404


@pytest.mark.parametrize("kind", ["charges", "payouts"])
def test_objects_are_listed_by_reference(sandbox_url: str, kind: str) -> None:
    first = create(sandbox_url, kind, "ref-listed")
    second = create(sandbox_url, kind, "ref-listed")
    create(sandbox_url, kind, "ref-other")
    listing = get(sandbox_url, f"/v1/{kind}", reference="ref-listed").json()
    assert listing == {"data": [first, second], "count": 2}
    assert get(sandbox_url, f"/v1/{kind}", reference="ref-none").json() == {"data": [], "count": 0}


def test_reset_forgets_effects_answers_and_faults_but_keeps_latency(
    sandbox_url: str, control: SandboxControl
) -> None:
    create(sandbox_url, "charges", "ref-r", key="key-r")
    control.add_fault("rate_limit", reference="nobody")
    control.set_latency(5)
    control.reset()
    assert control.effects() == []
    assert control.faults() == []
    assert control.config() == {"latency_ms": 5}
    response = requests.post(
        sandbox_url + "/v1/charges",
        json={
            "reference": "ref-r",
            "amount_minor": 1,
            "currency": "EUR",
            "source": {"type": "token", "token": "tok_visa"},
        },
        headers={"Idempotency-Key": "key-r"},
        timeout=5,
    )
    assert response.status_code == 201  # the old key's answer is gone, so no 422
    assert "Idempotent-Replayed" not in response.headers


def test_latency_is_configured_and_validated(sandbox_url: str, control: SandboxControl) -> None:
    control.set_latency(25)
    assert control.config() == {"latency_ms": 25}
    for bad in ({"latency_ms": -1}, {"latency_ms": 1.5}, {"latency": 3}):
        response = requests.put(sandbox_url + "/_sandbox/config", json=bad, timeout=5)
        assert response.status_code == 400
    assert control.config() == {"latency_ms": 25}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/nothing", 404, "not_found"),
        ("DELETE", "/v1/charges", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_answer_json_errors(
    sandbox_url: str, method: str, path: str, status: int, code: str
) -> None:
    response = requests.request(method, sandbox_url + path, timeout=5)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_oversized_body_is_rejected_with_413(sandbox_url: str) -> None:
    response = requests.post(
        sandbox_url + "/v1/charges",
        data=b"{" + b" " * 70_000 + b"}",
        headers={"Idempotency-Key": "big"},
        timeout=5,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

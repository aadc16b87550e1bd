"""Digital-currency payouts over real HTTP: test addresses, wei-sized amounts, validation."""

import uuid
from typing import Any

import pytest
import requests

from sandbox.client import SandboxControl

ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


def payout_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "reference": f"pay-{uuid.uuid4()}",
        "network": "ethereum",
        "asset": "ETH",
        "amount_minor": "1500000000000000000",
        "destination_address": ADDRESS,
    }
    return body | overrides


def post_payout(url: str, body: object) -> requests.Response:
    return requests.post(
        url + "/v1/payouts", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=5
    )


def test_payout_to_a_good_address_succeeds_with_a_transaction_hash(
    sandbox_url: str, control: SandboxControl
) -> None:
    body = payout_body(network="ethereum-sepolia", asset="USDC", metadata={"order": "o-1"})
    response = post_payout(sandbox_url, body)
    assert response.status_code == 201
    payout = response.json()
    assert payout["id"].startswith("po_")
    assert len(payout["id"]) == 3 + 24
    assert (payout["object"], payout["status"]) == ("payout", "succeeded")
    assert (payout["network"], payout["asset"]) == ("ethereum-sepolia", "USDC")
    assert payout["destination_address"] == ADDRESS
    assert payout["tx_hash"].startswith("0x")
    assert len(payout["tx_hash"]) == 2 + 64
    int(payout["tx_hash"], 16)
    [effect] = control.effects(body["reference"])
    assert (effect["id"], effect["kind"], effect["currency"]) == (payout["id"], "payout", "USDC")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (2**53 + 1, "9007199254740993"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("007", "7"),
        (1, "1"),
    ],
)
def test_amount_is_answered_and_recorded_as_an_exact_decimal_string(
    sandbox_url: str, control: SandboxControl, amount: int | str, expected: str
) -> None:
    body = payout_body(amount_minor=amount)
    response = post_payout(sandbox_url, body)
    assert response.status_code == 201
    assert response.json()["amount_minor"] == expected
    assert control.effects(body["reference"])[0]["amount_minor"] == expected


@pytest.mark.parametrize(
    ("address", "decline_code"),
    [
        ("0x000000000000000000000000000000000000dEaD", "address_blocked"),
        ("0x000000000000000000000000000000000000DEAD", "address_blocked"),
        ("0x0000000000000000000000000000000000000bad", "insufficient_balance"),
    ],
)
def test_test_addresses_decline_with_402_and_no_effect(
    sandbox_url: str, control: SandboxControl, address: str, decline_code: str
) -> None:
    body = payout_body(destination_address=address)
    response = post_payout(sandbox_url, body)
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "payout_error",
        "payout_declined",
        decline_code,
    )
    assert control.effects(body["reference"]) == []


@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"destination_address": "0x1234"}, "invalid_address", "destination_address"),
        (
            {"destination_address": "52908400098527886E0F7030069857D2E4169EE7"},
            "invalid_address",
            "destination_address",
        ),
        ({"destination_address": "0x" + "g" * 40}, "invalid_address", "destination_address"),
        ({"network": "bitcoin"}, "parameter_invalid", "network"),
        ({"network": ["ethereum"]}, "parameter_invalid", "network"),
        ({"asset": "DOGE"}, "parameter_invalid", "asset"),
        ({"amount_minor": 0}, "parameter_invalid", "amount_minor"),
        ({"amount_minor": "0"}, "parameter_invalid", "amount_minor"),
        ({"amount_minor": "-5"}, "parameter_invalid", "amount_minor"),
        ({"amount_minor": "1e18"}, "parameter_invalid", "amount_minor"),
        ({"amount_minor": 1.5}, "parameter_invalid", "amount_minor"),
        ({"amount_minor": 2**256}, "parameter_invalid", "amount_minor"),
        ({"memo": "hi"}, "parameter_unknown", "memo"),
    ],
)
def test_invalid_payout_is_rejected_with_400_naming_the_param(
    sandbox_url: str, overrides: dict[str, Any], code: str, param: str
) -> None:
    response = post_payout(sandbox_url, payout_body(**overrides))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)

"""Card charges over real HTTP: every test card and token, validation, and no card number leaks."""

import uuid
from typing import Any

import pytest
import requests

from sandbox.client import SandboxControl

VISA = "4242424242424242"


def card(number: str = VISA, **overrides: Any) -> dict[str, Any]:
    return {"type": "card", "number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"} | (
        overrides
    )


def charge_body(source: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {"reference": f"pay-{uuid.uuid4()}", "amount_minor": 1250, "currency": "EUR"}
    return body | {"source": source} | overrides


def post_charge(url: str, body: object) -> requests.Response:
    return requests.post(
        url + "/v1/charges", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=5
    )


SUCCESSFUL_SOURCES = [
    card(VISA),
    card("5555555555554444"),
    card("4000056655665556"),  # not in the table but passes Luhn
    {"type": "token", "token": "tok_visa"},
    {"type": "token", "token": "tok_success"},
    {"type": "token", "token": "tok_mastercard"},
    {"type": "token", "token": "tok_anything_else"},
]


@pytest.mark.parametrize("source", SUCCESSFUL_SOURCES)
def test_successful_test_values_charge_once(
    sandbox_url: str, control: SandboxControl, source: dict[str, Any]
) -> None:
    body = charge_body(source)
    response = post_charge(sandbox_url, body)
    assert response.status_code == 201
    charge = response.json()
    assert charge["id"].startswith("ch_")
    assert len(charge["id"]) == 3 + 24
    assert charge["object"] == "charge"
    assert charge["status"] == "succeeded"
    assert (charge["reference"], charge["amount_minor"], charge["currency"]) == (
        body["reference"],
        1250,
        "EUR",
    )
    assert charge["created_at"].endswith("Z")
    assert [effect["id"] for effect in control.effects(body["reference"])] == [charge["id"]]


@pytest.mark.parametrize(
    ("source", "decline_code"),
    [
        (card("4000000000009995"), "insufficient_funds"),
        (card("4000000000000002"), "do_not_honor"),
        (card("4000000000000069"), "expired_card"),
        (card(VISA, exp_year=2020), "expired_card"),
        ({"type": "token", "token": "tok_insufficient_funds"}, "insufficient_funds"),
        ({"type": "token", "token": "tok_do_not_honor"}, "do_not_honor"),
        ({"type": "token", "token": "tok_expired_card"}, "expired_card"),
    ],
)
def test_declining_test_values_answer_402_without_effect(
    sandbox_url: str, control: SandboxControl, source: dict[str, Any], decline_code: str
) -> None:
    body = charge_body(source)
    response = post_charge(sandbox_url, body)
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        decline_code,
    )
    assert control.effects(body["reference"]) == []


@pytest.mark.parametrize(
    "source", [card("4000000000000119"), {"type": "token", "token": "tok_processing_error"}]
)
def test_processing_error_values_answer_503_without_effect(
    sandbox_url: str, control: SandboxControl, source: dict[str, Any]
) -> None:
    body = charge_body(source)
    response = post_charge(sandbox_url, body)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert response.json()["error"]["code"] == "processing_error"
    assert control.effects(body["reference"]) == []


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (charge_body(card("4242424242424241")), "invalid_number", "source.number"),
        (charge_body(card("4242")), "invalid_number", "source.number"),
        (charge_body({"type": "token", "token": "visa"}), "invalid_token", "source.token"),
        (charge_body(card(), amount_minor=0), "parameter_invalid", "amount_minor"),
        (charge_body(card(), amount_minor=12.5), "parameter_invalid", "amount_minor"),
        (charge_body(card(), amount_minor=True), "parameter_invalid", "amount_minor"),
        (charge_body(card(), currency="eur"), "parameter_invalid", "currency"),
        (charge_body(card(), reference=""), "parameter_invalid", "reference"),
        (charge_body(card(), reference="r" * 129), "parameter_invalid", "reference"),
        (charge_body(card(), metadata={"order": 7}), "parameter_invalid", "metadata.order"),
        (charge_body(card(), colour="red"), "parameter_unknown", "colour"),
        (charge_body(card(exp_month=13)), "parameter_invalid", "source.exp_month"),
        (charge_body(card(cvc="12")), "parameter_invalid", "source.cvc"),
        (charge_body({"type": "cash"}), "parameter_invalid", "source.type"),
        (
            {"amount_minor": 1, "currency": "EUR", "source": card()},
            "parameter_missing",
            "reference",
        ),
    ],
)
def test_invalid_charge_is_rejected_with_400_naming_the_param(
    sandbox_url: str, body: dict[str, Any], code: str, param: str
) -> None:
    response = post_charge(sandbox_url, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'{"a": NaN}', b'{"a": 1, "a": 2}'])
def test_body_that_is_not_a_strict_json_object_is_invalid_json(
    sandbox_url: str, raw: bytes
) -> None:
    response = requests.post(
        sandbox_url + "/v1/charges", data=raw, headers={"Idempotency-Key": "k"}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_card_charge_answers_last4_and_a_token_charge_none(sandbox_url: str) -> None:
    by_card = post_charge(sandbox_url, charge_body(card("5555555555554444"))).json()
    by_token = post_charge(sandbox_url, charge_body({"type": "token", "token": "tok_visa"})).json()
    assert by_card["last4"] == "4444"
    assert "last4" not in by_token


def test_card_number_and_cvc_never_appear_in_any_answer_or_the_ledger(
    sandbox_url: str, control: SandboxControl
) -> None:
    number, cvc = "4000056655665556", "9876"
    texts = []
    for source in [card(number, cvc=cvc), card("4000000000009995", cvc=cvc)]:
        body = charge_body(source)
        key = {"Idempotency-Key": str(uuid.uuid4())}
        for _ in range(2):  # the first answer and its replay
            response = requests.post(sandbox_url + "/v1/charges", json=body, headers=key, timeout=5)
            texts.append(response.text)
    charge = requests.get(sandbox_url + "/v1/charges", timeout=5).json()["data"][0]
    texts.append(requests.get(f"{sandbox_url}/v1/charges/{charge['id']}", timeout=5).text)
    texts.append(requests.get(sandbox_url + "/v1/effects", timeout=5).text)
    assert charge["last4"] == number[-4:]
    for text in texts:
        assert number not in text
        assert "4000000000009995" not in text
        # Checked by key: four digits could turn up by chance inside a random hex id.
        assert "cvc" not in text

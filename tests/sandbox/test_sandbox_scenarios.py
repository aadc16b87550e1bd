"""Scenarios a request asks for itself (sandbox/scenarios.py), over real HTTP: each card token
and payout address, what the caller then sees attempt after attempt with one idempotency key,
the money that moved, and that a scenario fires once per reference."""

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_utils.address import is_checksum_address

from common.settings.providers import ProviderSettings
from sandbox.client import SandboxControl
from sandbox.scenarios import CARD_TOKEN_SCENARIOS, PAYOUT_ADDRESS_SCENARIOS, TIMEOUT_HOLD_S

SANDBOX_MD = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
#: What a caller sees when the sandbox holds its answer or resets the connection.
TIMEOUT, RESET = "timeout", "reset"
#: The client's read timeout: far below the scenario's hold.
READ_TIMEOUT_S = 0.5


def charge(token: str) -> dict[str, Any]:
    return {
        "reference": f"pay-{uuid.uuid4()}",
        "amount_minor": 1999,
        "currency": "USD",
        "source": {"type": "token", "token": token},
    }


def payout(address: str) -> dict[str, Any]:
    return {
        "reference": f"pay-{uuid.uuid4()}",
        "network": "ethereum",
        "asset": "ETH",
        "amount_minor": "1500000000000000000",
        "destination_address": address,
    }


def attempt(url: str, path: str, body: dict[str, Any], key: str) -> int | str:
    """One attempt as a client sees it: the status, or how the connection failed."""
    try:
        answer = requests.post(
            url + path, json=body, headers={"Idempotency-Key": key}, timeout=(5, READ_TIMEOUT_S)
        )
    except requests.exceptions.ReadTimeout:
        return TIMEOUT
    except requests.exceptions.ConnectionError:
        return RESET
    return answer.status_code


@pytest.mark.parametrize(
    ("token", "seen", "effects"),
    [
        ("tok_rate_limited", [429, 201], 1),
        ("tok_server_error_before_charge", [500, 201], 1),
        ("tok_server_error_after_charge", [500, 201], 1),
        ("tok_reset_after_charge", [RESET, 201], 1),
        ("tok_timeout_after_charge", [TIMEOUT, 201], 1),
        ("tok_in_doubt", [500, 500, 500], 0),
    ],
)
def test_a_scenario_token_makes_the_charge_misbehave_as_named_and_moves_money_at_most_once(
    sandbox_url: str, control: SandboxControl, token: str, seen: list[int | str], effects: int
) -> None:
    # Given a charge naming a scenario token, tried again and again with one idempotency key
    body, key = charge(token), str(uuid.uuid4())
    # When the caller makes its attempts
    statuses = [attempt(sandbox_url, "/v1/charges", body, key) for _ in seen]
    # Then each attempt meets what the scenario says, and the money moved at most once
    assert statuses == seen
    assert len(control.effects(body["reference"])) == effects
    # and a lookup by reference tells what no answer did
    listed = requests.get(
        f"{sandbox_url}/v1/charges", params={"reference": body["reference"]}, timeout=5
    ).json()
    assert listed["count"] == effects


@pytest.mark.parametrize(
    ("address", "seen", "effects"),
    [
        ("0x0000000000000000000000000000000000000429", [429, 201], 1),
        ("0x0000000000000000000000000000000000000500", [500, 201], 1),
        ("0x0000000000000000000000000000000000000502", [500, 201], 1),
        ("0x0000000000000000000000000000000000000504", [TIMEOUT, 201], 1),
    ],
)
def test_a_scenario_address_makes_the_payout_misbehave_as_named(
    sandbox_url: str, control: SandboxControl, address: str, seen: list[int | str], effects: int
) -> None:
    body, key = payout(address), str(uuid.uuid4())

    statuses = [attempt(sandbox_url, "/v1/payouts", body, key) for _ in seen]

    assert statuses == seen
    assert len(control.effects(body["reference"])) == effects


def test_a_scenario_fires_once_per_reference_and_its_rule_is_listed_with_its_trigger(
    sandbox_url: str, control: SandboxControl
) -> None:
    # Given two payments with the same scenario token
    first, second = (
        charge("tok_server_error_before_charge"),
        charge("tok_server_error_before_charge"),
    )
    # When each is tried twice, each with a key of its own and then a new key
    first_seen = [attempt(sandbox_url, "/v1/charges", first, str(uuid.uuid4())) for _ in "ab"]
    second_seen = [attempt(sandbox_url, "/v1/charges", second, str(uuid.uuid4())) for _ in "ab"]
    # Then each payment met the fault on its first request only
    assert first_seen == second_seen == [500, 201]
    # and each got a rule of its own, aimed at its reference, used up, naming the token
    rules = control.faults()
    assert [(r["reference"], r["remaining"], r["trigger"]) for r in rules] == [
        (first["reference"], 0, "tok_server_error_before_charge"),
        (second["reference"], 0, "tok_server_error_before_charge"),
    ]
    assert all(r["path"] == "/v1/charges" for r in rules)


def test_a_rule_from_the_control_api_comes_before_the_scenario(
    sandbox_url: str, control: SandboxControl
) -> None:
    # Given a rate limit aimed at a payment that also names a scenario
    body, key = charge("tok_server_error_before_charge"), str(uuid.uuid4())
    control.add_fault("rate_limit", reference=body["reference"])
    # When it is tried three times, then the rule meets it first, the scenario next
    assert [attempt(sandbox_url, "/v1/charges", body, key) for _ in "abc"] == [429, 500, 201]
    assert [r["trigger"] for r in control.faults()] == [None, "tok_server_error_before_charge"]


def test_reset_forgets_which_references_met_their_scenario(
    sandbox_url: str, control: SandboxControl
) -> None:
    body = charge("tok_rate_limited")
    assert attempt(sandbox_url, "/v1/charges", body, str(uuid.uuid4())) == 429

    control.reset()

    assert attempt(sandbox_url, "/v1/charges", body, str(uuid.uuid4())) == 429


def test_an_invalid_charge_naming_a_scenario_meets_no_fault_and_adds_no_rule(
    sandbox_url: str, control: SandboxControl
) -> None:
    body = charge("tok_rate_limited") | {"currency": "usd"}

    assert attempt(sandbox_url, "/v1/charges", body, str(uuid.uuid4())) == 400
    assert control.faults() == []


def test_the_timeout_scenario_holds_its_answer_past_paymqs_default_read_timeout() -> None:
    default = ProviderSettings.model_fields["provider_read_timeout_s"].default
    assert default < TIMEOUT_HOLD_S


@pytest.mark.parametrize("value", sorted([*CARD_TOKEN_SCENARIOS, *PAYOUT_ADDRESS_SCENARIOS]))
def test_every_scenario_is_documented(value: str) -> None:
    assert f"`{value}`" in SANDBOX_MD.read_text()


@pytest.mark.parametrize("address", sorted(PAYOUT_ADDRESS_SCENARIOS))
def test_every_scenario_address_is_its_own_checksum_form(address: str) -> None:
    # A paymq payout request needs the EIP-55 form: the documented one must pass as it is.
    assert is_checksum_address(address)

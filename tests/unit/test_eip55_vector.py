"""docs/vectors/eip55.json: its checksum forms follow the documented steps, and paymq's own
address check (the payout details of a request) accepts and refuses exactly what it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak
from pydantic import ValidationError

from common.details import DigitalCurrencyDetails
from sandbox.testvalues import PAYOUT_ADDRESSES

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTOR = json.loads((DOCS / "vectors" / "eip55.json").read_text())
CHECKSUM: list[dict[str, str]] = VECTOR["checksum"]
REFUSED: list[dict[str, str]] = VECTOR["refused"]


def checksum_form(address: str) -> str:
    """The EIP-55 form, by the steps docs/protocol.md gives."""
    digits = address[2:].lower()
    digest = keccak(text=digits).hex()
    return "0x" + "".join(
        digit.upper() if digit.isalpha() and int(digest[i], 16) >= 8 else digit
        for i, digit in enumerate(digits)
    )


def payout(address: str) -> DigitalCurrencyDetails:
    return DigitalCurrencyDetails.model_validate(
        {"network": "ethereum", "asset": "ETH", "destination_address": address}
    )


def entry_id(entry: dict[str, Any]) -> str:
    return str(entry.get("checksummed") or entry["address"])


def test_the_vector_has_an_all_digit_address_and_a_mistyped_one() -> None:
    assert any(not any(c.isalpha() for c in e["lowercase"][2:]) for e in CHECKSUM)
    assert any(e["address"].lower() != e["address"] for e in REFUSED)


@pytest.mark.parametrize("entry", CHECKSUM, ids=entry_id)
def test_the_documented_steps_give_the_checksum_form(entry: dict[str, str]) -> None:
    assert entry["lowercase"] == entry["lowercase"].lower()
    assert checksum_form(entry["lowercase"]) == entry["checksummed"]


@pytest.mark.parametrize("entry", CHECKSUM, ids=entry_id)
def test_a_payout_to_the_checksum_form_is_accepted_unchanged(entry: dict[str, str]) -> None:
    assert payout(entry["checksummed"]).destination_address == entry["checksummed"]


@pytest.mark.parametrize(
    "entry", [e for e in CHECKSUM if e["lowercase"] != e["checksummed"]], ids=entry_id
)
def test_a_payout_to_the_lowercase_of_a_mixed_case_form_is_refused(entry: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="EIP-55"):
        payout(entry["lowercase"])


@pytest.mark.parametrize("entry", REFUSED, ids=entry_id)
def test_a_payout_to_a_refused_address_is_refused(entry: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=r"EIP-55|zero address"):
        payout(entry["address"])


@pytest.mark.parametrize("address", sorted(PAYOUT_ADDRESSES))
def test_the_sandbox_documents_its_test_addresses_in_checksum_form(address: str) -> None:
    form = checksum_form(address)
    assert form in {e["checksummed"] for e in CHECKSUM}
    assert f"`{form}`" in (DOCS / "sandbox.md").read_text()

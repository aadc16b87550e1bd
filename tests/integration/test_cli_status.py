"""`paymq status` as an operator runs it (a real subprocess, a SQLite store): a payment found by
its id, or by the merchant reference or idempotency key the operator was told, amounts in major
and minor units, and clear answers when nothing or several match."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.clock import FixedClock
from store.claims import Claims
from store.records import Acquired, Attempt, NewPayment, OutcomeRecord, StoredResult
from store.states import State
from store.submissions import Submission, Submissions
from tests.integration.helpers import cli_env, run_cli
from tests.stores import sqlite_engine

pytestmark = pytest.mark.integration

CARD = "00000000-0000-4000-8000-00000000000c"
PAYOUT = "00000000-0000-4000-8000-00000000000e"
OVER_HTTP = "00000000-0000-4000-8000-00000000000a"
NOW_MS = 1_900_000_000_000


def new_payment(payment_id: str, **fields: object) -> NewPayment:
    values: dict[str, object] = {
        "payment_id": payment_id,
        "scope": "shop",
        "request_hash": "h",
        "request_message_id": f"m-{payment_id}",
        "channel": "card",
        "currency": "USD",
        "amount_minor": 1999,
    }
    return NewPayment(**(values | fields))  # type: ignore[arg-type]


Status = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def status(tmp_path: Path) -> Iterator[Status]:
    """A store holding a declined card payment and a payout with one merchant reference, and a
    payment taken over HTTP (Idempotency-Key `web-77`, which the worker saw as `shop:web-77`)."""
    with sqlite_engine(tmp_path) as engine:
        claims = Claims(engine, FixedClock(NOW_MS), owner="w", lease_ms=10_000)
        try:
            for payment, state in [
                (
                    new_payment(
                        CARD,
                        idempotency_key="order-1001",
                        merchant_reference="order-1001",
                        payment_created_ms=NOW_MS - 2000,
                    ),
                    State.DECLINED,
                ),
                (
                    new_payment(
                        PAYOUT,
                        idempotency_key="order-1001-payout",
                        merchant_reference="order-1001",
                        channel="digital_currency",
                        amount_minor=25 * 10**17,
                        currency="ETH",
                        payment_created_ms=NOW_MS - 1000,
                    ),
                    State.SUCCEEDED,
                ),
                (
                    new_payment(
                        OVER_HTTP,
                        scope="api-gateway",
                        idempotency_key="shop:web-77",
                        merchant_reference="cart-9",
                        payment_created_ms=NOW_MS - 3000,
                    ),
                    State.SUCCEEDED,
                ),
            ]:
                claim = claims.claim(payment)
                assert isinstance(claim, Acquired)
                outcome = OutcomeRecord(state, 1, False)
                attempt = Attempt(1, state.value)
                claims.finish(payment.payment_id, outcome, attempt, token=claim.token)
        finally:
            claims.close()
        request = StoredResult("p.requests", "card", "m-http", "request", {}, b"{}")
        Submissions(engine, FixedClock(NOW_MS)).add(
            Submission("shop", "web-77", "0" * 64, OVER_HTTP, "card", request, "cart-9")
        )
        env = cli_env(PAYMQ_DATABASE_URL=str(engine.url), COLUMNS="200")
        yield lambda *args: run_cli("status", *args, env=env, cwd=tmp_path)


def test_a_payment_found_by_its_id_shows_its_amount_in_major_and_minor_units(
    status: Status,
) -> None:
    shown = status(CARD)

    assert shown.returncode == 0, shown.stderr
    assert f"{CARD}  card  declined  19.99 USD (1999 minor units)  ref order-1001" in shown.stdout
    assert "1970" not in shown.stdout
    assert "2030-03-17T17:46:40.000Z  received -> processing" in shown.stdout


def test_a_merchant_reference_lists_its_payments_newest_first(status: Status) -> None:
    # When the operator gives the reference the merchant quoted
    shown = status("order-1001")
    # Then both payments with it are listed, the newest first, with their amounts
    assert shown.returncode == 0, shown.stderr
    assert "2 payments with id, merchant reference or idempotency key 'order-1001'" in shown.stdout
    lines = shown.stdout.splitlines()
    [payout_line] = [n for n, line in enumerate(lines) if PAYOUT in line]
    [card_line] = [n for n, line in enumerate(lines) if CARD in line]
    assert payout_line < card_line
    assert "2.500000000000000000 ETH" in lines[payout_line]
    assert "19.99 USD" in lines[card_line]
    # and as JSON, the HTTP API's list, amounts as the contract writes them
    listed = json.loads(status("order-1001", "--json").stdout)
    assert [p["payment_id"] for p in listed["payments"]] == [PAYOUT, CARD]
    assert [p["amount"] for p in listed["payments"]] == [
        {"amount_minor": str(25 * 10**17), "currency": "ETH"},
        {"amount_minor": 1999, "currency": "USD"},
    ]
    assert listed["has_more"] is False


def test_a_limit_shows_the_newest_and_says_more_match(status: Status) -> None:
    shown = status("--reference", "order-1001", "--limit", "1")

    assert shown.returncode == 0, shown.stderr
    assert PAYOUT in shown.stdout
    assert CARD not in shown.stdout
    assert "more match: --limit to show more than 1" in shown.stdout
    assert json.loads(status("order-1001", "--limit", "1", "--json").stdout)["has_more"]


def test_a_payment_made_over_http_is_found_by_the_idempotency_key_its_caller_sent(
    status: Status,
) -> None:
    # When the operator gives the Idempotency-Key the HTTP caller used
    shown = status("web-77")
    # Then the one payment is shown in full, under the key the worker saw
    assert shown.returncode == 0, shown.stderr
    assert f"{OVER_HTTP}  card  succeeded" in shown.stdout
    assert "idempotency key shop:web-77 (producer api-gateway)" in shown.stdout
    found = json.loads(status("--idempotency-key", "web-77", "--json").stdout)
    assert [p["payment_id"] for p in found["payments"]] == [OVER_HTTP]
    # and a key is not a reference
    assert status("--reference", "web-77").returncode == 1


def test_a_payment_id_prints_one_json_document(status: Status) -> None:
    shown = status(PAYOUT, "--json")

    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["payment_id"] == PAYOUT
    assert document["amount"] == {"amount_minor": str(25 * 10**17), "currency": "ETH"}


def test_nothing_found_says_what_was_looked_for_and_exits_1(status: Status) -> None:
    shown = status("order-404")

    assert shown.returncode == 1
    assert "no payment with id, merchant reference or idempotency key 'order-404'" in shown.stderr
    as_json = status("--reference", "order-404", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {"payments": [], "has_more": False}
    assert "no payment with merchant reference 'order-404'" in as_json.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of"),
        (("order-1001", "--reference", "order-1001"), "give one of"),
        (("--reference", "a", "--idempotency-key", "b"), "give one of"),
        (("--reference", " "), "is empty"),
        (("order-1001", "--limit", "0"), "--limit"),
    ],
    ids=["nothing", "text-and-reference", "reference-and-key", "blank", "limit-0"],
)
def test_a_lookup_that_is_not_one_thing_to_look_for_is_a_usage_error(
    status: Status, args: tuple[str, ...], message: str
) -> None:
    shown = status(*args)

    assert shown.returncode == 2, shown.stdout
    assert message in shown.stderr
    assert "Traceback" not in shown.stderr

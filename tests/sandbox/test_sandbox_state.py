"""The pure core, without a server: expiry against an injected clock, claims, fault order."""

import gc
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox.errors import ApiError
from sandbox.faults import FaultBook, parse_fault_rule
from sandbox.idempotency import Claim, IdempotencyStore, Replay
from sandbox.replies import json_reply
from sandbox.state import SandboxState
from sandbox.testvalues import PENDING_SETTLE_S
from sandbox.validation import parse_charge, parse_payout

MARCH_2030 = datetime(2030, 3, 15, 12, 0, tzinfo=UTC)


def counting_hex() -> Any:
    counter = iter(range(1, 1_000_000))
    return lambda nbytes: format(next(counter), f"0{nbytes * 2}x")


def reachable_bytes(root: object) -> bytes:
    """Every str and bytes reachable from root's data, not from code, classes or modules."""
    skip = (type, types.ModuleType, types.FunctionType, types.MethodType, types.CodeType)
    seen: set[int] = set()
    stack, found = [root], []
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, str | bytes):
            found.append(item if isinstance(item, bytes) else item.encode())
        else:
            stack.extend(gc.get_referents(item))
    return b"\n".join(found)


def charge_body(number: str, exp_month: int = 12, exp_year: int = 2099) -> dict[str, Any]:
    source = {"type": "card", "number": number, "exp_month": exp_month, "exp_year": exp_year}
    return {
        "reference": "r",
        "amount_minor": 1,
        "currency": "EUR",
        "source": source | {"cvc": "987"},
    }


def charge(state: SandboxState, body: dict[str, Any], key: str) -> int:
    admission = state.idempotency.begin("/v1/charges", key, state.fingerprint(body))
    assert isinstance(admission, Claim)
    with admission:
        return state.charge(parse_charge(body), admission).status


@pytest.mark.parametrize(
    ("exp_month", "exp_year", "status"),
    [(3, 2030, 201), (4, 2030, 201), (2, 2030, 402), (12, 2029, 402)],
)
def test_card_is_good_through_its_expiry_month_by_the_injected_clock(
    exp_month: int, exp_year: int, status: int
) -> None:
    state = SandboxState(clock=lambda: MARCH_2030)
    assert charge(state, charge_body("4242424242424242", exp_month, exp_year), "k") == status


def test_ids_and_timestamps_come_from_the_injected_sources() -> None:
    state = SandboxState(clock=lambda: MARCH_2030, new_hex=counting_hex())
    charge(state, charge_body("4242424242424242"), "k")
    [effect] = state.ledger.effects()
    assert effect.id == "ch_" + "0" * 23 + "1"
    assert effect.created_at == "2030-03-15T12:00:00.000Z"


def test_state_keeps_no_card_number_or_cvc_anywhere() -> None:
    state = SandboxState(clock=lambda: MARCH_2030, new_hex=counting_hex())
    numbers = ["4000056655665556", "4000000000009995", "4000000000000119"]
    for index, number in enumerate(numbers):
        charge(state, charge_body(number), f"k{index}")
    assert len(state.ledger) == 1
    assert len(state.idempotency) == 2
    dump = reachable_bytes(state)
    for number in numbers:
        assert number.encode() not in dump
    assert b"987" not in dump  # the CVC is checked and dropped
    assert b"5556" in dump  # last4 is kept


def test_card_source_repr_hides_the_number() -> None:
    request = parse_charge(charge_body("4000056655665556"))
    assert "4000056655665556" not in repr(request)


def test_unsettled_claim_is_released_on_exit_and_a_settled_one_is_replayed() -> None:
    store = IdempotencyStore()
    first = store.begin("/v1/charges", "k", b"f")
    assert isinstance(first, Claim)
    with first:
        pass
    again = store.begin("/v1/charges", "k", b"f")
    assert isinstance(again, Claim)
    again.settle(json_reply(201, {"ok": True}))
    replay = store.begin("/v1/charges", "k", b"f")
    assert isinstance(replay, Replay)
    assert replay.reply.body == b'{"ok":true}'


def test_claim_from_before_a_reset_does_not_release_a_newer_claim() -> None:
    store = IdempotencyStore()
    old = store.begin("/v1/charges", "k", b"f")
    store.clear()
    new = store.begin("/v1/charges", "k", b"f")
    assert isinstance(old, Claim)
    assert isinstance(new, Claim)
    old.release()
    with pytest.raises(ApiError) as raised:
        store.begin("/v1/charges", "k", b"f")
    assert raised.value.status == 409


def test_fingerprint_ignores_key_order_and_sees_values() -> None:
    state = SandboxState()
    assert state.fingerprint({"a": 1, "b": 2}) == state.fingerprint({"b": 2, "a": 1})
    assert state.fingerprint({"a": 1}) != state.fingerprint({"a": "1"})


def test_fault_book_takes_rules_in_creation_order_until_used_up() -> None:
    book = FaultBook()
    book.add(parse_fault_rule({"action": "rate_limit", "times": 2, "reference": "r"}, "f1"))
    book.add(parse_fault_rule({"action": "error_before_effect"}, "f2"))
    taken = [book.take("/v1/charges", "r") for _ in range(4)]
    assert [rule.id if rule else None for rule in taken] == ["f1", "f1", "f2", None]
    assert book.take("/v1/charges", None) is None


def test_a_payout_to_the_pending_address_is_accepted_then_settles():
    # Given a sandbox whose clock the test moves
    now = [MARCH_2030]
    state = SandboxState(clock=lambda: now[0], new_hex=counting_hex())
    body = {
        "reference": "p",
        "network": "ethereum",
        "asset": "ETH",
        "amount_minor": "5",
        "destination_address": "0x000000000000000000000000000000000000BEEF",
    }
    admission = state.idempotency.begin("/v1/payouts", "k", state.fingerprint(body))
    assert isinstance(admission, Claim)
    # When it is paid out, the provider accepts it as pending (202) and records the effect
    with admission:
        reply = state.payout(parse_payout(body), admission)
    assert reply.status == 202
    [payout] = state.ledger.payouts("p")
    assert payout.status(now[0]) == "pending"
    # Then it reports succeeded once its settle time has passed
    now[0] += timedelta(seconds=PENDING_SETTLE_S)
    assert payout.status(now[0]) == "succeeded"

"""What a discard records: the operator's name and reason, checked, and the dead letter as it
was, card numbers masked and the broker's delivery count left out; and that SQLite syncs the
record to disk before the message is acked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from common.envelope import (
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_ORIGINAL_ROUTING_KEY,
    InboundMessage,
)
from paymq.clikit import UsageError
from paymq.discard import Discarding, discard_record
from store.discards import _synced
from tests.stores import sqlite_engine

BROKER_DEATH = [{"reason": "delivery_limit", "queue": "p.work.card", "count": 1}]


def _dead_letter(body: bytes = b'{"a":1}', **headers: object) -> InboundMessage:
    return InboundMessage(
        body=body,
        exchange="",
        routing_key="p.dead-letter",
        content_type="application/json",
        message_id="m-1",
        message_type="paymq.payment_request.v1",
        headers={HEADER_ORIGINAL_ROUTING_KEY: "card", **headers},
    )


def test_the_reason_and_the_operator_are_kept_without_surrounding_blanks() -> None:
    discarding = Discarding("  refunded by hand  ", " alice ")

    assert (discarding.reason, discarding.by) == ("refunded by hand", "alice")


@pytest.mark.parametrize(
    ("reason", "by", "says"),
    [
        ("", "alice", "--reason is empty"),
        ("x" * 501, "alice", "longer than 500"),
        ("card 4111 1111 1111 1111 failed", "alice", "looks like a card number"),
        ("why\x1b[2J", "alice", "printable"),
        ("why", " ", "--by is empty"),
        ("why", "b" * 129, "longer than 128"),
    ],
)
def test_a_reason_or_operator_unfit_for_the_record_is_refused(
    reason: str, by: str, says: str
) -> None:
    with pytest.raises(UsageError, match=says):
        Discarding(reason, by)


def test_the_record_holds_the_message_its_channel_and_why_it_was_dead_lettered() -> None:
    message = _dead_letter(
        **{
            HEADER_DEAD_LETTER_CODE: "idempotency_conflict",
            HEADER_DEAD_LETTER_REASON: "key order-1 is taken",
            "paymq-route": "card",
            "x-delivery-count": 3,
            "x-death": BROKER_DEATH,
        }
    )

    record = discard_record(message, Discarding("duplicate", "alice"), at_ms=1_000)

    assert (record.message_id, record.channel, record.code) == (
        "m-1",
        "card",
        "idempotency_conflict",
    )
    assert record.dead_letter_reason == "key order-1 is taken"
    assert (record.reason, record.discarded_by, record.discarded_ms) == (
        "duplicate",
        "alice",
        1_000,
    )
    assert record.body == message.body
    assert record.body_sha256 == hashlib.sha256(message.body).hexdigest()
    assert "x-delivery-count" not in record.headers
    assert "x-death" not in record.headers  # not a string or integer
    assert record.headers["paymq-route"] == "card"


def test_a_message_the_broker_dead_lettered_is_recorded_with_the_brokers_reason() -> None:
    record = discard_record(
        _dead_letter(**{"x-death": BROKER_DEATH}), Discarding("x", "a"), at_ms=0
    )

    assert record.code == "delivery_limit"


def test_a_card_number_in_clear_is_masked_in_the_record_and_hashed_as_it_was() -> None:
    body = b'{"note":"4111111111111111"}'

    record = discard_record(_dead_letter(body), Discarding("x", "a"), at_ms=0)

    assert b"4111111111111111" not in record.body
    assert b"1111" in record.body  # the last four stay
    assert record.body_sha256 == hashlib.sha256(body).hexdigest()


def test_a_discard_on_sqlite_is_committed_synced_to_disk_and_the_connection_set_back(
    tmp_path: Path,
) -> None:
    # synchronous: 2 is FULL (every commit synced), 1 NORMAL (the store's own setting)
    with sqlite_engine(tmp_path) as engine, engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with _synced(connection):
            assert driver.execute("PRAGMA synchronous").fetchone() == (2,)
        assert driver.execute("PRAGMA synchronous").fetchone() == (1,)

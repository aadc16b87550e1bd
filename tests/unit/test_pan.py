"""Card numbers in clear in free text: one detector (common/pan.py), refused at the producer and
at the worker with code pan_in_clear, and never kept whole in a dead letter or a result."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from pika.spec import Basic, BasicProperties

from common.amqp.convert import inbound_from
from common.envelope import HEADER_KEY_ID
from common.errors import PanInClear
from common.models import PaymentStatus
from common.pan import contains_pan, document_fields_with_pans

if TYPE_CHECKING:
    from common.envelope import InboundMessage
    from tests.unit.conftest import Worker

#: The payment networks' published test card numbers (Visa, Mastercard 5- and 2-series,
#: American Express, Discover, Diners Club, JCB, UnionPay, Maestro).
TEST_PANS = [
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4222222222222",
    "5555555555554444",
    "5105105105105100",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "30569309025904",
    "38520000023237",
    "3530111333300000",
    "3566002020360505",
    "6200000000000005",
    "6759649826438453",
]


def grouped(pan: str, separator: str) -> str:
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


@pytest.mark.parametrize("pan", TEST_PANS)
@pytest.mark.parametrize(
    "written",
    [
        lambda pan: pan,
        lambda pan: grouped(pan, " "),
        lambda pan: grouped(pan, "-"),
        lambda pan: f"order {pan} for Ann",
        lambda pan: f"ref{pan}",
        lambda pan: f"qty 12 {grouped(pan, ' ')}",
    ],
    ids=["whole", "spaces", "dashes", "in-a-sentence", "after-letters", "after-a-number"],
)
def test_every_published_test_card_number_is_found_however_it_is_written(
    pan: str, written: Callable[[str], str]
) -> None:
    assert contains_pan(written(pan))


@pytest.mark.parametrize(
    "text",
    [
        "order-1001",
        "2026-12-02 10:30",
        "1050 USD",
        "shopa:victim-1",
        "4111111111111112",  # fails the Luhn check
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits: a longer run, not a card number
        "083fa446-2206-47ff-8762-411111111111",  # a UUID whose groups are digits
        "0x4111111111111111",  # 0x hex
        "d41d8cd98f00b2044111111111111111",  # a hash
        "0x52908400098527886E0F7030069857D2E4169EE7",
    ],
)
def test_identifiers_numbers_and_near_misses_are_not_card_numbers(text: str) -> None:
    assert not contains_pan(text)


PAN = "4111111111111111"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"merchant_reference": f"order {PAN}"}, "merchant_reference"),
        ({"idempotency_key": f"key-{PAN}"}, "idempotency_key"),
        ({"metadata": {"note": PAN}}, "metadata (a value)"),
        ({"metadata": {PAN: "x"}}, "metadata (a key)"),
        ({"card_token": f"tok_{PAN}"}, "details.source.token"),
    ],
    ids=["reference", "idempotency-key", "metadata-value", "metadata-key", "token"],
)
def test_the_producer_refuses_a_card_number_in_any_free_text_field_before_signing(
    make_request: Callable[..., Any], fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(PanInClear) as refused:
        make_request(**fields)

    assert refused.value.code == "pan_in_clear"
    assert named in str(refused.value)
    assert PAN not in str(refused.value)


@pytest.mark.parametrize(
    "change",
    [
        {"merchant_reference": f"order {PAN}"},
        {"idempotency_key": PAN},
        {"metadata": {"card": grouped(PAN, " ")}},
        {"metadata": {PAN: "x"}},
    ],
    ids=["reference", "idempotency-key", "metadata-value", "metadata-key"],
)
def test_a_worker_refuses_a_signed_request_with_a_card_number_and_keeps_it_masked(
    make_request: Callable[..., Any],
    sign_body: Callable[..., InboundMessage],
    worker: Worker,
    change: dict[str, Any],
) -> None:
    # Given a request signed by a producer that does not check (another language's library)
    request, _ = make_request()
    body = json.loads(request.model_dump_json()) | change
    message = sign_body(json.dumps(body).encode())
    # When a worker takes it
    handled = worker.handle(message)
    # Then it is refused before any provider call, with its own code
    assert worker.channel.calls == []
    assert handled.status is PaymentStatus.REJECTED
    assert handled.result.code == "pan_in_clear"
    # and neither its result nor its dead-letter copy holds the card number
    [event], [dead] = handled.events, handled.dead_letters
    for written in (PAN, grouped(PAN, " ")):
        assert written not in event.body.decode()
        assert written not in dead.body.decode()
    assert "****1111" in dead.body.decode()  # the last four stay, for whoever looks at it


@pytest.mark.parametrize(
    "where",
    [("idempotency_key",), ("details", "source", "token"), ("metadata", "note")],
    ids=["idempotency-key", "token", "metadata-value"],
)
@pytest.mark.parametrize("separator", [" ", "-"], ids=["spaces", "dashes"])
def test_a_card_number_in_a_field_the_schema_refuses_is_still_refused_as_one_and_masked(
    make_request: Callable[..., Any],
    sign_body: Callable[..., InboundMessage],
    worker: Worker,
    where: tuple[str, ...],
    separator: str,
) -> None:
    # Given a signed request with a grouped card number where the schema allows no spaces
    request, _ = make_request()
    body = json.loads(request.model_dump_json())
    *parents, name = where
    node = body
    for parent in parents:
        node = node.setdefault(parent, {})
    node[name] = grouped(PAN, separator)
    # When a worker takes it
    handled = worker.handle(sign_body(json.dumps(body).encode()))
    # Then it is refused as a card number in clear (not merely malformed), and its dead letter
    # and result hold only the last four digits
    assert handled.result.code == "pan_in_clear"
    assert ".".join(where) in handled.result.reason
    [event], [dead] = handled.events, handled.dead_letters
    for written in (PAN, grouped(PAN, separator)):
        assert written not in event.body.decode()
        assert written not in dead.body.decode()


def test_amounts_are_digits_by_design_and_never_taken_for_a_card_number() -> None:
    # A 16-digit amount that passes the Luhn check is an amount, in any field named so
    document = {"amount": {"amount_minor": PAN, "currency": "ETH"}, "merchant_reference": "o-1"}
    assert document_fields_with_pans(document) == []
    assert document_fields_with_pans({"metadata": {"total": PAN}}) == ["metadata.total"]
    assert document_fields_with_pans({"metadata": {PAN: "x"}}) == ["metadata (a key)"]


@pytest.mark.parametrize(
    "message_id", [PAN, f"order-{grouped(PAN, '-')}", f"m {grouped(PAN, ' ')}"]
)
def test_a_card_number_in_the_message_id_is_masked_on_receipt_and_the_request_refused(
    make_request: Callable[..., Any], worker: Worker, message_id: str
) -> None:
    # Given a request whose producer put a card number in the message id, as received
    _, signed = make_request()
    received = inbound_from(
        Basic.Deliver(exchange=signed.exchange, routing_key=signed.routing_key),
        BasicProperties(
            message_id=message_id,
            type=signed.message_type,
            headers=dict(signed.headers),
            content_type=signed.content_type,
        ),
        signed.body,
    )
    # Then the id is masked before anything reads it
    assert PAN not in (received.message_id or "")
    assert received.message_id is not None
    assert received.message_id.endswith("****1111")
    # and a worker refuses the request without a provider call, echoing only the masked id
    handled = worker.handle(received)
    assert worker.channel.calls == []
    assert handled.result.code == "pan_in_clear"
    assert handled.result.request_message_id == received.message_id
    [event], [dead] = handled.events, handled.dead_letters
    assert PAN not in event.body.decode()
    assert PAN not in dead.message_id


def test_a_dead_letter_refused_for_another_reason_is_masked_when_its_body_holds_a_card_number(
    make_request: Callable[..., Any], sign_body: Callable[..., InboundMessage], worker: Worker
) -> None:
    # Given a request with a card number in its reference, signed by a key the worker does
    # not know (refused for that before its body is read)
    request, _ = make_request()
    body = json.loads(request.model_dump_json()) | {"merchant_reference": PAN}
    signed = sign_body(json.dumps(body).encode())
    message = dataclasses.replace(signed, headers={**signed.headers, HEADER_KEY_ID: "stranger-1"})
    # When a worker refuses it
    handled = worker.handle(message)
    # Then the dead-letter copy keeps the reason, and the card number masked
    assert handled.result.code == "unknown_key"
    [dead] = handled.dead_letters
    assert PAN not in dead.body.decode()
    assert "****1111" in dead.body.decode()

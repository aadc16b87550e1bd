"""Result events: signed by the worker for their routing key, stable per payment and status."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from common.clock import to_ms
from common.envelope import InboundMessage, open_message
from common.errors import KeyNotAllowed, PaymentDeclined, SignatureInvalid, WrongChannel
from common.keyring import Keyring, KeyRole
from common.models import PaymentStatus, result_event_id
from common.signing import RESULT_TYPE

if TYPE_CHECKING:
    from tests.unit.conftest import Handled, Worker


@pytest.fixture
def succeeded(make_request: Callable[..., Any], worker: Worker) -> tuple[Any, Handled]:
    request, message = make_request()
    return request, worker.handle(message)


def open_as(keyring: Keyring, message: InboundMessage, *, role: KeyRole, route: str) -> Any:
    return open_message(
        message,
        keyring,
        expected_type=RESULT_TYPE,
        role=role,
        channel="card",
        route=route,
        max_body_bytes=65_536,
    )


def test_a_result_event_is_signed_by_the_worker_key_for_its_routing_key(
    succeeded: tuple[Any, Handled], worker: Worker
):
    request, handled = succeeded
    [event] = handled.events
    assert (event.exchange, event.routing_key) == ("t.results", "card.succeeded")
    assert event.message_type == RESULT_TYPE
    assert event.headers["paymq-key-id"] == "worker-1"
    assert event.headers["paymq-expires-at-ms"] == 0
    result = handled.result
    assert event.message_id == str(result.event_id)
    assert result.event_id == result_event_id(str(request.payment_id), PaymentStatus.SUCCEEDED)
    assert to_ms(result.occurred_at) == worker.clock.now_ms()
    assert result.payment_created_at == request.created_at


def test_a_tampered_result_event_does_not_verify(
    succeeded: tuple[Any, Handled], keyring: Keyring, inbound: Callable[..., InboundMessage]
):
    [event] = succeeded[1].events
    forged = inbound(event, body=event.body.replace(b'"succeeded"', b'"declined"'))
    with pytest.raises(SignatureInvalid):
        open_as(keyring, forged, role=KeyRole.WORKER, route="card.succeeded")


def test_a_result_event_does_not_verify_under_another_routing_key(
    succeeded: tuple[Any, Handled], keyring: Keyring, inbound: Callable[..., InboundMessage]
):
    [event] = succeeded[1].events
    with pytest.raises(WrongChannel):
        open_as(keyring, inbound(event), role=KeyRole.WORKER, route="card.declined")


def test_a_result_event_carries_no_producer_authority(
    succeeded: tuple[Any, Handled], keyring: Keyring, inbound: Callable[..., InboundMessage]
):
    [event] = succeeded[1].events
    with pytest.raises(KeyNotAllowed):
        open_as(keyring, inbound(event), role=KeyRole.PRODUCER, route="card.succeeded")


def test_the_same_payment_handled_twice_at_the_same_instant_gives_byte_identical_events(
    make_request: Callable[..., Any], worker: Worker
):
    _, message = make_request()
    first = worker.handle(message).events
    second = worker.handle(dataclasses.replace(message, redelivered=True)).events
    assert first == second


def test_the_same_payment_handled_again_later_repeats_its_stored_result_byte_for_byte(
    make_request: Callable[..., Any], worker: Worker
):
    _, message = make_request()
    first = worker.handle(message).events
    worker.clock.advance(60_000)
    second = worker.handle(message).events
    assert first == second
    assert len(worker.channel.calls) == 1


def test_a_forged_message_has_a_stable_event_id_bound_to_its_exact_bytes(
    make_request: Callable[..., Any], worker: Worker
):
    request, message = make_request()
    forged = dataclasses.replace(message, body=message.body.replace(b"1050", b"9050"))
    other = dataclasses.replace(message, body=message.body.replace(b"1050", b"9051"))
    first = worker.handle(forged).result.event_id
    assert worker.handle(forged).result.event_id == first
    assert worker.handle(other).result.event_id != first
    assert first != result_event_id(str(request.payment_id), PaymentStatus.REJECTED)


def test_a_result_reason_never_carries_a_card_number(
    make_request: Callable[..., Any], worker: Worker
):
    worker.channel.script(PaymentDeclined("card 4111 1111 1111 1111 declined", code="do_not_honor"))
    handled = worker.handle(make_request()[1])
    assert b"4111 1111 1111 1111" not in handled.events[0].body
    assert handled.result.reason == "card ****1111 declined"
    assert "4111 1111 1111 1111" not in handled.disposition.summary

"""The worker's decision core: authority first (I3), then one terminal result per payment."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from common.clock import FixedClock
from common.details import DigitalCurrencyDetails
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTERED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_SIGNATURE,
    InboundMessage,
)
from common.errors import PaymentDeclined, ProviderRejected
from common.models import PaymentStatus
from common.money import Money
from workers.providers.base import ProviderReceipt

if TYPE_CHECKING:
    from tests.unit.conftest import Worker

PAYOUT: dict[str, Any] = {
    "amount": Money(amount_minor=10**18, currency="ETH"),
    "card_token": None,
    "payout": DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x52908400098527886E0F7030069857D2E4169EE7",
    ),
}


def with_headers(message: InboundMessage, **changes: object) -> InboundMessage:
    headers = {**message.headers, **changes}
    return dataclasses.replace(message, headers={k: v for k, v in headers.items() if v is not None})


@pytest.fixture
def build(
    make_request: Callable[..., Any], sign_body: Callable[..., InboundMessage], clock: FixedClock
) -> Callable[[str], InboundMessage]:
    """A delivery that has no authority to move money, by case name."""

    def build(case: str) -> InboundMessage:
        good = make_request()[1]
        created = int(str(good.headers[HEADER_CREATED_AT_MS]))
        expires = int(str(good.headers[HEADER_EXPIRES_AT_MS]))
        signature = base64.b64decode(str(good.headers[HEADER_SIGNATURE]))
        cases: dict[str, Callable[[], InboundMessage]] = {
            "tampered-body": lambda: dataclasses.replace(
                good, body=good.body.replace(b"1050", b"9050")
            ),
            "tampered-message-id": lambda: dataclasses.replace(good, message_id="msg-x"),
            "tampered-created": lambda: with_headers(good, **{HEADER_CREATED_AT_MS: created - 1}),
            "tampered-expires": lambda: with_headers(good, **{HEADER_EXPIRES_AT_MS: expires + 1}),
            "tampered-route": lambda: with_headers(good, **{HEADER_ROUTE: "digital_currency"}),
            "tampered-key-id": lambda: with_headers(good, **{HEADER_KEY_ID: "producer-dc"}),
            "missing-signature": lambda: with_headers(good, **{HEADER_SIGNATURE: None}),
            "truncated-signature": lambda: with_headers(
                good, **{HEADER_SIGNATURE: base64.b64encode(signature[:40]).decode()}
            ),
            "unknown-key": lambda: with_headers(good, **{HEADER_KEY_ID: "producer-9"}),
            "retired-key": lambda: make_request(key_id="producer-old")[1],
            "worker-key": lambda: make_request(key_id="worker-1")[1],
            "key-for-other-channel": lambda: make_request(key_id="producer-dc")[1],
            "wrong-channel": lambda: make_request(**PAYOUT)[1],
            "oversized": lambda: sign_body(b'{"pad": "' + b"x" * 70_000 + b'"}'),
            "wrong-content-type": lambda: dataclasses.replace(good, content_type="text/xml"),
            "gzip-content-encoding": lambda: dataclasses.replace(good, content_encoding="gzip"),
            "wrong-message-type": lambda: dataclasses.replace(good, message_type="x.v1"),
            "not-json": lambda: sign_body(b"{not json"),
            "duplicate-keys": lambda: sign_body(good.body[:-1] + b',"metadata":{}}'),
            "float-amount": lambda: sign_body(good.body.replace(b":1050", b":1050.0")),
            "schema-invalid": lambda: sign_body(b'{"payment_id": "x"}'),
            "body-times-differ-from-header": lambda: sign_body(good.body),
            "details-for-another-channel": lambda: sign_body(make_request(**PAYOUT)[1].body),
            "created-in-the-future": lambda: make_request(created_at_ms=clock.now_ms() + 600_000)[
                1
            ],
        }
        return cases[case]()

    return build


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("tampered-body", "signature_invalid"),
        ("tampered-message-id", "signature_invalid"),
        ("tampered-created", "signature_invalid"),
        ("tampered-expires", "signature_invalid"),
        ("tampered-route", "signature_invalid"),
        ("tampered-key-id", "signature_invalid"),
        ("missing-signature", "signature_invalid"),
        ("truncated-signature", "signature_invalid"),
        ("unknown-key", "unknown_key"),
        ("retired-key", "key_not_allowed"),
        ("worker-key", "key_not_allowed"),
        ("key-for-other-channel", "key_not_allowed"),
        ("wrong-channel", "wrong_channel"),
        ("oversized", "body_too_large"),
        ("wrong-content-type", "unsupported_content_type"),
        ("gzip-content-encoding", "unsupported_content_type"),
        ("wrong-message-type", "malformed"),
        ("not-json", "malformed"),
        ("duplicate-keys", "malformed"),
        ("float-amount", "malformed"),
        ("schema-invalid", "malformed"),
        ("body-times-differ-from-header", "malformed"),
        ("details-for-another-channel", "malformed"),
        ("created-in-the-future", "malformed"),
    ],
)
def test_a_message_without_authority_is_rejected_and_dead_lettered_without_provider_call(
    build: Callable[[str], InboundMessage], worker: Worker, case: str, code: str
):
    message = build(case)
    handled = worker.handle(message)
    assert worker.channel.calls == []
    assert handled.status is PaymentStatus.REJECTED
    [event], [dead], [] = handled.events, handled.dead_letters, handled.retries
    assert event.routing_key == "card.rejected"
    result = handled.result
    assert (result.status, result.code, result.attempts) == (PaymentStatus.REJECTED, code, 0)
    assert result.request_message_id == message.message_id
    # kept whole for a replay after a fix, except a body refused for its size: not kept
    kept = b"" if code == "body_too_large" else message.body
    assert (dead.body, dead.routing_key) == (kept, message.routing_key)
    assert dead.headers[HEADER_DEAD_LETTER_CODE] == code
    assert dead.headers[HEADER_DEAD_LETTER_REASON] == result.reason
    assert dead.headers[HEADER_DEAD_LETTERED_AT_MS] == worker.clock.now_ms()


def test_a_forged_message_names_no_payment_in_its_result(
    build: Callable[[str], InboundMessage], worker: Worker
):
    result = worker.handle(build("tampered-body")).result
    assert (result.payment_id, result.amount, result.merchant_reference) == (None, None, None)


@pytest.mark.parametrize("expires_in_ms", [0, -1, -3_600_000])
def test_an_expired_payment_gets_an_expired_result_and_dead_letter_without_provider_call(
    make_request: Callable[..., Any], worker: Worker, expires_in_ms: int
):
    now = worker.clock.now_ms()
    request, message = make_request(
        created_at_ms=now - 7_200_000, expires_at_ms=now + expires_in_ms
    )
    handled = worker.handle(message)
    assert worker.channel.calls == []
    assert handled.status is PaymentStatus.EXPIRED
    [event], [dead] = handled.events, handled.dead_letters
    assert (event.routing_key, handled.result.code) == ("card.expired", "expired")
    assert (handled.result.payment_id, handled.result.amount) == (
        request.payment_id,
        request.amount,
    )
    assert dead.headers[HEADER_DEAD_LETTER_CODE] == "expired"


def test_a_forged_expired_message_is_rejected_not_expired(
    make_request: Callable[..., Any], worker: Worker
):
    now = worker.clock.now_ms()
    _, message = make_request(created_at_ms=now - 7_200_000, expires_at_ms=now - 1)
    forged = dataclasses.replace(message, body=message.body.replace(b"1050", b"1051"))
    assert worker.handle(forged).status is PaymentStatus.REJECTED
    assert worker.channel.calls == []


@pytest.mark.parametrize(
    ("receipt", "status"),
    [
        (ProviderReceipt(provider="fake", reference="ch_9"), PaymentStatus.SUCCEEDED),
        (ProviderReceipt(provider="fake", reference="ch_9", settled=False), PaymentStatus.PENDING),
    ],
)
def test_a_provider_receipt_gives_a_succeeded_or_pending_result_only(
    make_request: Callable[..., Any],
    worker: Worker,
    receipt: ProviderReceipt,
    status: PaymentStatus,
):
    request, message = make_request()
    worker.channel.script(receipt)
    handled = worker.handle(message)
    assert handled.status is status
    [(seen, _)] = worker.channel.calls
    assert seen == request
    assert (handled.dead_letters, handled.retries) == ([], [])
    [event] = handled.events
    assert event.routing_key == f"card.{status.value}"
    result = handled.result
    assert (result.provider, result.provider_reference, result.attempts) == ("fake", "ch_9", 1)
    assert (result.payment_id, result.idempotency_key) == (request.payment_id, "order-1-key")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PaymentDeclined("no funds", code="insufficient_funds"), "declined", "insufficient_funds"),
        (ProviderRejected("bad request", code="invalid_amount"), "failed", "invalid_amount"),
    ],
    ids=["declined", "provider-rejected"],
)
def test_a_permanent_provider_answer_is_final_without_retry_or_dead_letter(
    make_request: Callable[..., Any], worker: Worker, error: Exception, status: str, code: str
):
    worker.channel.script(error)
    handled = worker.handle(make_request()[1])
    assert len(worker.channel.calls) == 1
    assert handled.status == status
    assert (handled.dead_letters, handled.retries) == ([], [])
    assert (handled.result.code, handled.result.attempts) == (code, 1)
    assert handled.events[0].routing_key == f"card.{status}"


def test_a_signature_header_with_non_ascii_text_gets_a_rejected_result(
    make_request: Callable[..., Any], worker: Worker
):
    _, message = make_request()
    forged = with_headers(
        message, **{HEADER_SIGNATURE: "é" + str(message.headers[HEADER_SIGNATURE])}
    )
    handled = worker.handle(forged)
    assert handled.status is PaymentStatus.REJECTED
    assert worker.channel.calls == []


def test_two_different_messages_refused_for_one_idempotency_key_get_two_event_ids(
    make_request: Callable[..., Any], worker: Worker
):
    # Given a payment made under an idempotency key
    paid, _ = make_request(idempotency_key="order-9")
    worker.handle(make_request(idempotency_key="order-9", payment_id=paid.payment_id)[1])
    # When two other requests come with that payment id and key, and other amounts
    messages = [
        make_request(
            idempotency_key="order-9",
            payment_id=paid.payment_id,
            amount=Money(amount_minor=n, currency="USD"),
        )[1]
        for n in (2_000, 3_000)
    ]
    results = [worker.handle(message).result for message in messages]
    # Then each is refused with an event of its own: one event id is one body, always
    assert [r.code for r in results] == ["idempotency_conflict", "idempotency_conflict"]
    assert results[0].event_id != results[1].event_id
    # and the same message refused again has the same event id
    assert worker.handle(messages[0]).result.event_id == results[0].event_id

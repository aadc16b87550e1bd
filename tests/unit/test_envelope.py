"""open_message: every check before parsing, each rejection on its own."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from common.details import DigitalCurrencyDetails
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_SIGNATURE,
    InboundMessage,
    VerifiedMessage,
    open_message,
)
from common.errors import (
    BodyTooLarge,
    KeyNotAllowed,
    MalformedMessage,
    SignatureInvalid,
    UnknownKey,
    UnsupportedContentType,
    WrongChannel,
)
from common.keyring import Keyring, KeyRole
from common.money import Money
from common.signing import REQUEST_TYPE, RESULT_TYPE


@pytest.fixture
def request_message(make_request: Callable[..., Any]) -> InboundMessage:
    return make_request(message_id="msg-1")[1]


def open_request(
    keyring: Keyring,
    message: InboundMessage,
    *,
    channel: str = "card",
    expected_type: str = REQUEST_TYPE,
    max_body_bytes: int = 65_536,
) -> VerifiedMessage:
    return open_message(
        message,
        keyring,
        expected_type=expected_type,
        role=KeyRole.PRODUCER,
        channel=channel,
        route=channel,
        max_body_bytes=max_body_bytes,
    )


def with_header(message: InboundMessage, name: str, value: object) -> InboundMessage:
    return dataclasses.replace(message, headers={**message.headers, name: value})


def test_a_signed_request_opens_with_its_fields_and_key(
    keyring: Keyring, request_message: InboundMessage
):
    verified = open_request(keyring, request_message)
    assert verified.body == request_message.body
    assert verified.key.key_id == "producer-1"
    assert (verified.fields.route, verified.fields.message_id) == ("card", "msg-1")


def test_a_tampered_body_is_rejected_before_parsing(
    keyring: Keyring, request_message: InboundMessage
):
    body = request_message.body.replace(b"1050", b"9050")
    with pytest.raises(SignatureInvalid):
        open_request(keyring, dataclasses.replace(request_message, body=body))


def tamper(message: InboundMessage, name: str) -> InboundMessage:
    headers = message.headers
    if name == "message_id":
        return dataclasses.replace(message, message_id="msg-2")
    if name in (HEADER_CREATED_AT_MS, HEADER_EXPIRES_AT_MS):
        return with_header(message, name, int(str(headers[name])) + 1)
    if name == HEADER_KEY_ID:
        return with_header(message, name, "producer-dc")
    return with_header(message, name, "digital_currency")


@pytest.mark.parametrize(
    "name",
    ["message_id", HEADER_KEY_ID, HEADER_ROUTE, HEADER_CREATED_AT_MS, HEADER_EXPIRES_AT_MS],
)
def test_a_tampered_signed_header_is_rejected(
    keyring: Keyring, request_message: InboundMessage, name: str
):
    with pytest.raises(SignatureInvalid):
        open_request(keyring, tamper(request_message, name))


def test_a_tampered_message_type_is_rejected(keyring: Keyring, request_message: InboundMessage):
    with pytest.raises(MalformedMessage, match="message type"):
        open_request(keyring, dataclasses.replace(request_message, message_type="paymq.other.v1"))


def test_a_request_signature_never_verifies_as_a_result(
    keyring: Keyring, request_message: InboundMessage
):
    relabelled = dataclasses.replace(request_message, message_type=RESULT_TYPE)
    with pytest.raises(SignatureInvalid):
        open_request(keyring, relabelled, expected_type=RESULT_TYPE)


@pytest.mark.parametrize("message_id", [None, "", "msg 1"])
def test_a_missing_or_unsignable_message_id_is_rejected(
    keyring: Keyring, request_message: InboundMessage, message_id: str | None
):
    with pytest.raises(SignatureInvalid):
        open_request(keyring, dataclasses.replace(request_message, message_id=message_id))


def signature_of(message: InboundMessage) -> str:
    return str(message.headers[HEADER_SIGNATURE])


@pytest.mark.parametrize(
    "signature",
    [
        lambda sig: base64.b64encode(base64.b64decode(sig)[:63]).decode(),
        lambda sig: "",
        lambda sig: sig[:-4],
        lambda sig: "not base64!",
        lambda sig: sig + "\n",
        lambda sig: 12345,
        lambda sig: None,
    ],
    ids=["truncated", "empty", "cut-text", "non-base64", "trailing-newline", "int", "null"],
)
def test_a_truncated_missing_or_non_base64_signature_is_rejected(
    keyring: Keyring, request_message: InboundMessage, signature: Callable[[str], object]
):
    changed = with_header(
        request_message, HEADER_SIGNATURE, signature(signature_of(request_message))
    )
    with pytest.raises(SignatureInvalid):
        open_request(keyring, changed)


def test_a_message_without_signature_header_is_rejected(
    keyring: Keyring, request_message: InboundMessage
):
    with pytest.raises(SignatureInvalid, match="missing"):
        open_request(keyring, dataclasses.replace(request_message, headers={}))


def test_a_signature_header_with_non_ascii_text_is_rejected(
    keyring: Keyring, request_message: InboundMessage
):
    changed = with_header(request_message, HEADER_SIGNATURE, "é" + signature_of(request_message))
    with pytest.raises(SignatureInvalid):
        open_request(keyring, changed)


@pytest.mark.parametrize("value", ["1700000000000", 1.5, True, None])
@pytest.mark.parametrize("name", [HEADER_CREATED_AT_MS, HEADER_EXPIRES_AT_MS])
def test_signed_times_must_be_integer_headers(
    keyring: Keyring, request_message: InboundMessage, name: str, value: object
):
    with pytest.raises(SignatureInvalid):
        open_request(keyring, with_header(request_message, name, value))


def test_header_strings_delivered_as_bytes_are_read_as_text(
    keyring: Keyring, request_message: InboundMessage
):
    as_bytes = with_header(request_message, HEADER_KEY_ID, b"producer-1")
    assert open_request(keyring, as_bytes).key.key_id == "producer-1"


def test_an_unknown_key_id_is_rejected(keyring: Keyring, request_message: InboundMessage):
    with pytest.raises(UnknownKey):
        open_request(keyring, with_header(request_message, HEADER_KEY_ID, "producer-9"))


@pytest.mark.parametrize(
    ("key_id", "message"),
    [
        ("producer-old", "is retired"),
        ("worker-1", "is a worker key, not producer"),
        ("producer-dc", "not allowed for channel 'card'"),
    ],
    ids=["retired", "worker-key", "other-channel"],
)
def test_a_valid_signature_by_a_key_without_authority_is_rejected(
    keyring: Keyring, make_request: Callable[..., Any], key_id: str, message: str
):
    _, signed = make_request(key_id=key_id)
    with pytest.raises(KeyNotAllowed, match=message):
        open_request(keyring, signed)


def test_a_request_signed_for_another_channel_is_rejected(
    keyring: Keyring, make_request: Callable[..., Any]
):
    _, payout = make_request(
        amount=Money(amount_minor=10**18, currency="ETH"),
        card_token=None,
        payout=DigitalCurrencyDetails(
            network="ethereum",
            asset="ETH",
            destination_address="0x52908400098527886E0F7030069857D2E4169EE7",
        ),
    )
    with pytest.raises(WrongChannel, match="signed for 'digital_currency', received on 'card'"):
        open_request(keyring, payout, channel="card")


def test_an_oversized_body_is_rejected_before_anything_else(
    keyring: Keyring, request_message: InboundMessage
):
    unsigned = dataclasses.replace(request_message, headers={}, content_type=None)
    with pytest.raises(BodyTooLarge):
        open_request(keyring, unsigned, max_body_bytes=len(request_message.body) - 1)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=latin-1"])
def test_a_wrong_content_type_is_rejected(
    keyring: Keyring, request_message: InboundMessage, content_type: str | None
):
    with pytest.raises(UnsupportedContentType):
        open_request(keyring, dataclasses.replace(request_message, content_type=content_type))


def test_resend_keeps_body_and_signed_headers_drops_broker_headers_and_adds_extras(
    keyring: Keyring, request_message: InboundMessage, inbound: Callable[..., InboundMessage]
):
    delivered = with_header(request_message, "x-death", [{"count": 1}])
    delivered = with_header(delivered, "x-first-death-queue", "q")
    copy = delivered.resend("t.retry.1000ms", "card", {"paymq-attempts": 1})
    assert (copy.exchange, copy.routing_key, copy.body) == (
        "t.retry.1000ms",
        "card",
        delivered.body,
    )
    assert not any(name.startswith("x-") for name in copy.headers)
    assert copy.headers["paymq-attempts"] == 1
    assert copy.message_id == "msg-1"
    assert open_request(keyring, inbound(copy)).body == request_message.body

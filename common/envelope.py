"""Messages as plain values, and the AMQP headers that carry a signature.

`OutboundMessage` and `InboundMessage` are what the rest of paymq sees of AMQP; only
common/amqp/ converts them to and from pika's types. The signed fields travel as:

    property  message_id            -> SignedFields.message_id
    property  type                  -> SignedFields.message_type (must be the expected type)
    header    paymq-key-id          -> SignedFields.key_id
    header    paymq-route           -> SignedFields.route (channel, or results routing key)
    header    paymq-created-at-ms   -> SignedFields.created_at_ms
    header    paymq-expires-at-ms   -> SignedFields.expires_at_ms
    header    paymq-signature       -> standard base64 of the 64-byte Ed25519 signature
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.errors import MalformedMessage, SignatureInvalid, WrongChannel
from common.keyring import Keyring, KeyRole, TrustedKey
from common.signing import SignedFields, Signer, verify
from common.strictjson import (
    JSON_CONTENT_TYPE,
    check_content_encoding,
    check_content_type,
    check_size,
)

HEADER_KEY_ID = "paymq-key-id"
HEADER_ROUTE = "paymq-route"
HEADER_CREATED_AT_MS = "paymq-created-at-ms"
HEADER_EXPIRES_AT_MS = "paymq-expires-at-ms"
HEADER_SIGNATURE = "paymq-signature"
#: Added by workers to retry copies, signed by the worker (workers/retries.py).
HEADER_ATTEMPTS = "paymq-attempts"
HEADER_OUTCOME_UNKNOWN = "paymq-outcome-unknown"
HEADER_NOT_BEFORE_MS = "paymq-not-before-ms"
HEADER_RETRY_KEY_ID = "paymq-retry-key-id"
HEADER_RETRY_SIGNATURE = "paymq-retry-signature"
#: Unsigned, added on dead-lettering: why the message is there.
HEADER_DEAD_LETTER_CODE = "paymq-dead-letter-code"
HEADER_DEAD_LETTER_REASON = "paymq-dead-letter-reason"
HEADER_DEAD_LETTERED_AT_MS = "paymq-dead-lettered-at-ms"
#: Unsigned, added by a queue browser that puts a message back as a copy through the default
#: exchange (common/amqp/browse.py): the routing key the message had, its channel.
HEADER_ORIGINAL_ROUTING_KEY = "paymq-original-routing-key"

HeaderValue = str | int


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A persistent message to publish with confirms."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE
    timestamp_s: int | None = None
    #: An unroutable message is an error, never a silent drop.
    mandatory: bool = True


@dataclass(frozen=True, slots=True)
class InboundMessage:
    body: bytes
    exchange: str
    routing_key: str
    content_type: str | None
    message_id: str | None
    message_type: str | None
    headers: Mapping[str, object]
    redelivered: bool = False
    content_encoding: str | None = None
    #: The message id held a card number: `message_id` is masked, and the message is refused
    #: (pan_in_clear) without the number reaching a result, a log or the store.
    card_number_in_message_id: bool = False

    @property
    def original_routing_key(self) -> str:
        """The routing key the message was first given: a browsed message put back as a copy
        carries it in a header, its own being the queue's name."""
        kept = self.headers.get(HEADER_ORIGINAL_ROUTING_KEY)
        return kept if isinstance(kept, str) and kept else self.routing_key

    def resend(
        self, exchange: str, routing_key: str, extra: Mapping[str, HeaderValue]
    ) -> OutboundMessage:
        """Republish exactly these bytes and signed headers (retry tiers, the dead-letter queue)."""
        headers = {
            k: v
            for k, v in self.headers.items()
            if isinstance(v, str | int) and not k.startswith("x-")
        }
        return OutboundMessage(
            exchange=exchange,
            routing_key=routing_key,
            body=self.body,
            message_id=self.message_id or "",
            message_type=self.message_type or "",
            headers={**headers, **extra},
            content_type=self.content_type or "",
        )


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    fields: SignedFields
    key: TrustedKey
    body: bytes


def sign_message(
    signer: Signer, fields: SignedFields, body: bytes, *, exchange: str, routing_key: str
) -> OutboundMessage:
    signature = signer.sign(fields, body)
    return OutboundMessage(
        exchange=exchange,
        routing_key=routing_key,
        body=body,
        message_id=fields.message_id,
        message_type=fields.message_type,
        headers={
            HEADER_KEY_ID: fields.key_id,
            HEADER_ROUTE: fields.route,
            HEADER_CREATED_AT_MS: fields.created_at_ms,
            HEADER_EXPIRES_AT_MS: fields.expires_at_ms,
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
        },
        timestamp_s=fields.created_at_ms // 1000,
    )


def _header(headers: Mapping[str, object], name: str, kind: type) -> object:
    value = headers.get(name)
    if isinstance(value, bytes) and kind is str:
        value = value.decode("utf-8", "replace")
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        raise SignatureInvalid(f"header {name} is missing or not a {kind.__name__}")
    return value


def signed_fields(message: InboundMessage, expected_type: str) -> tuple[SignedFields, bytes]:
    """Read the signed fields and the signature; anything missing makes the message unsigned."""
    if message.message_type != expected_type:
        raise MalformedMessage(f"message type {message.message_type!r}; expected {expected_type!r}")
    headers = message.headers
    try:
        signature = base64.b64decode(str(_header(headers, HEADER_SIGNATURE, str)), validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
        raise SignatureInvalid("header paymq-signature is not base64") from exc
    fields = SignedFields(
        message_type=expected_type,
        key_id=str(_header(headers, HEADER_KEY_ID, str)),
        route=str(_header(headers, HEADER_ROUTE, str)),
        message_id=message.message_id or "",
        created_at_ms=int(_header(headers, HEADER_CREATED_AT_MS, int)),  # type: ignore[call-overload]
        expires_at_ms=int(_header(headers, HEADER_EXPIRES_AT_MS, int)),  # type: ignore[call-overload]
    )
    return fields, signature


def open_message(
    message: InboundMessage,
    keyring: Keyring,
    *,
    expected_type: str,
    role: KeyRole | tuple[KeyRole, ...],
    channel: str,
    route: str,
    max_body_bytes: int,
) -> VerifiedMessage:
    """Every check that comes before parsing: size, content type, signature, key, route.

    `route` is what the message must be signed for: the worker's channel for requests, the
    delivery's routing key for results. Raises a MessageRejected subclass on any failure.
    """
    check_size(message.body, max_body_bytes)
    check_content_type(message.content_type)
    check_content_encoding(message.content_encoding)
    fields, signature = signed_fields(message, expected_type)
    verify(keyring, fields, message.body, signature)
    if fields.route != route:
        raise WrongChannel(f"signed for {fields.route!r}, received on {route!r}")
    key = keyring.authorize(fields.key_id, role=role, channel=channel)
    return VerifiedMessage(fields=fields, key=key, body=message.body)

"""Any single flipped byte of what a request signature covers makes the request rejected, and
a rejected request never reaches a provider (I3)."""

from __future__ import annotations

import base64
import dataclasses
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from common.clock import FixedClock
from common.details import DigitalCurrencyDetails
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_SIGNATURE,
    InboundMessage,
    OutboundMessage,
    open_message,
)
from common.errors import MessageRejected
from common.keyring import Keyring, KeyRole
from common.models import PaymentRequest, PaymentStatus
from common.money import Money, max_amount_minor
from common.pan import contains_pan
from common.sealing import CardData
from common.signing import REQUEST_TYPE, Signer
from common.topology import Topology
from producer.encode import Draft, SealingKey, encode_request
from store.claims import Claims
from workers.channels.base import ExecutionContext
from workers.config import HandlerConfig
from workers.handler import Handler
from workers.providers.base import ProviderReceipt
from workers.retries import RetryPolicy

if TYPE_CHECKING:
    from tests.properties.conftest import Keys

TOPOLOGY = Topology(prefix="prop")
TARGETS = (
    "body",
    "message_id",
    "message_type",
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_CREATED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_SIGNATURE,
)

printable_ascii = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


def regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


def free_text(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[str]:
    """Text that carries no card number in clear (a request with one is refused)."""
    return st.text(min_size=min_size, max_size=max_size).filter(lambda t: not contains_pan(t))


@st.composite
def drafts(draw: st.DrawFn) -> Draft:
    shared: dict[str, Any] = {
        "merchant_reference": draw(free_text(min_size=1, max_size=128)),
        "idempotency_key": draw(
            printable_ascii.filter(lambda key: len(key) <= 255 and not contains_pan(key))
        ),
        "metadata": draw(
            st.dictionaries(free_text(min_size=1, max_size=40), free_text(max_size=60), max_size=5)
        ),
    }
    kind = draw(st.sampled_from(["token", "sealed", "payout"]))
    if kind == "payout":
        asset = draw(st.sampled_from(["ETH", "USDC"]))
        payout = DigitalCurrencyDetails(
            network=draw(st.sampled_from(["ethereum", "ethereum-sepolia", "ethereum-devnet"])),
            asset=asset,
            destination_address=to_checksum_address(
                draw(regex(r"0x[0-9a-fA-F]{40}").filter(lambda a: int(a, 16) != 0))
            ),
        )
        amount_minor = draw(st.integers(1, max_amount_minor(asset)))
        return Draft(Money(amount_minor=amount_minor, currency=asset), payout=payout, **shared)
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", "BHD"]))
    amount = Money(amount_minor=draw(st.integers(1, max_amount_minor(currency))), currency=currency)
    if kind == "token":
        # A token that happens to be a Luhn-valid digit run is a card number: refused.
        token = draw(regex(r"[A-Za-z0-9_\-]{1,64}").filter(lambda t: not contains_pan(t)))
        return Draft(amount, card_token=token, **shared)
    card = CardData(
        number=draw(regex(r"[0-9]{12,19}")),
        exp_month=draw(st.integers(1, 12)),
        exp_year=draw(st.integers(2000, 2100)),
        cvc=draw(st.none() | regex(r"[0-9]{3,4}")),
    )
    return Draft(amount, card=card, **shared)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    created_at_ms = draw(st.integers(0, 4_000_000_000_000))
    return {
        "draft": draw(drafts()),
        "created_at_ms": created_at_ms,
        "expires_at_ms": created_at_ms + draw(st.integers(1, 10**10)),
        "message_id": draw(regex(r"[A-Za-z0-9._:\-]{1,128}")),
    }


flips = st.tuples(st.sampled_from(TARGETS), st.integers(0, 2**16), st.integers(1, 255))


def encode(spec: dict[str, Any], producer: Signer, sealing_key: SealingKey) -> InboundMessage:
    _, outbound = encode_request(
        spec["draft"],
        signer=producer,
        topology=TOPOLOGY,
        sealing_key=sealing_key,
        **{k: spec[k] for k in ("created_at_ms", "expires_at_ms", "message_id")},
    )
    return received(outbound)


def received(outbound: OutboundMessage) -> InboundMessage:
    return InboundMessage(
        body=outbound.body,
        exchange=outbound.exchange,
        routing_key=outbound.routing_key,
        content_type=outbound.content_type,
        message_id=outbound.message_id,
        message_type=outbound.message_type,
        headers=dict(outbound.headers),
    )


def flip_byte(data: bytes, index: int, mask: int) -> bytes:
    flipped = bytearray(data)
    flipped[index % len(data)] ^= mask
    return bytes(flipped)


def as_header_text(data: bytes) -> str | bytes:
    # pika hands over a header string that is not UTF-8 as bytes.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def tamper(message: InboundMessage, target: str, index: int, mask: int) -> InboundMessage:
    headers = dict(message.headers)
    if target == "body":
        return dataclasses.replace(message, body=flip_byte(message.body, index, mask))
    if target in ("message_id", "message_type"):
        value = flip_byte(str(getattr(message, target)).encode(), index, mask)
        return dataclasses.replace(message, **{target: value.decode("utf-8", "replace")})
    if target in (HEADER_CREATED_AT_MS, HEADER_EXPIRES_AT_MS):
        headers[target] = int(str(headers[target])) ^ (mask << (8 * (index % 8)))
    elif target == HEADER_SIGNATURE:
        signature = base64.b64decode(str(headers[target]))
        headers[target] = base64.b64encode(flip_byte(signature, index, mask)).decode()
    else:
        headers[target] = as_header_text(flip_byte(str(headers[target]).encode(), index, mask))
    return dataclasses.replace(message, headers=headers)


def open_request(message: InboundMessage, keyring: Keyring, channel: str) -> Any:
    return open_message(
        message,
        keyring,
        expected_type=REQUEST_TYPE,
        role=KeyRole.PRODUCER,
        channel=channel,
        route=channel,
        max_body_bytes=1_000_000,
    )


@settings(max_examples=200, deadline=None)
@given(spec=requests(), flip=flips)
def test_any_single_flipped_byte_of_a_signed_request_is_rejected(
    keys: Keys, spec: dict[str, Any], flip: tuple[str, int, int]
):
    message = encode(spec, keys.producer, keys.sealing_key)
    channel = spec["draft"].channel
    assert open_request(message, keys.keyring, channel).body == message.body
    tampered = tamper(message, *flip)
    try:
        open_request(tampered, keys.keyring, channel)
    except MessageRejected:
        return
    raise AssertionError(f"tampered {flip[0]} was accepted")


class RecordingChannel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[PaymentRequest] = []

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.calls.append(request)
        return ProviderReceipt(provider="fake", reference="ref")


@settings(max_examples=200, deadline=None)
@given(spec=requests(), flip=flips)
def test_a_tampered_request_is_rejected_by_the_worker_without_provider_call(
    keys: Keys, store: Claims, spec: dict[str, Any], flip: tuple[str, int, int]
):
    channel = RecordingChannel(spec["draft"].channel)
    config = HandlerConfig(
        channel=channel.name,
        topology=TOPOLOGY,
        retry=RetryPolicy(delays_ms=TOPOLOGY.retry_delays_ms, max_attempts=3),
        max_body_bytes=1_000_000,
        max_clock_skew_ms=0,
    )
    clock = FixedClock(spec["created_at_ms"])
    handler = Handler(
        config, channel, keyring=keys.keyring, signer=keys.worker, clock=clock, store=store
    )
    disposition = handler.handle(tamper(encode(spec, keys.producer, keys.sealing_key), *flip))
    assert disposition.status is PaymentStatus.REJECTED
    assert channel.calls == []

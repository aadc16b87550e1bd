"""Refusals of input that may carry a card number keep no cause: the error translated (a
validation or JSON error, quoting or holding the input) would put the number in every traceback
that shows the chain. Every other translation keeps its cause (the edges' own tests say so)."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.clock import FixedClock
from common.envelope import InboundMessage
from common.errors import MalformedMessage, SealedDataInvalid
from common.keyring import Keyring
from common.sealing import CardData, open_card, seal_card
from common.strictjson import check_strict_json
from workers.checks import Checker

PAN = "4111111111111111"
AAD = b"paymq.payment_request.v1\nproducer-1\ncard\nmsg-1\n1000\n2000\n"


def shown(error: BaseException) -> str:
    """Everything a logged traceback of `error` shows, its chain included."""
    return "".join(traceback.format_exception(error))


def test_a_request_refused_by_its_schema_shows_no_card_number_it_carried(
    keyring: Keyring, sign_body: Callable[..., InboundMessage], clock: FixedClock
) -> None:
    # A number, not a string: the check for card numbers in clear reads strings only, so
    # the schema is what refuses it, with a validation error that quotes it.
    body = json.dumps({"card_number": int(PAN)}).encode()
    checker = Checker(
        channel="card", keyring=keyring, max_body_bytes=65_536, max_clock_skew_ms=300_000
    )
    with pytest.raises(MalformedMessage) as caught:
        checker.check(sign_body(body), clock.now_ms())
    assert caught.value.__cause__ is None
    assert PAN not in shown(caught.value)


def test_sealed_card_data_refused_by_its_schema_shows_no_card_number() -> None:
    private_key = X25519PrivateKey.generate()
    not_a_card = CardData.model_construct(number=PAN + "x", exp_month=12, exp_year=2030)
    sealed = seal_card(not_a_card, kid="seal-1", public_key=private_key.public_key(), aad=AAD)
    with pytest.raises(SealedDataInvalid) as caught:
        open_card(sealed, private_keys={"seal-1": private_key}, aad=AAD)
    assert caught.value.__cause__ is None
    assert PAN not in shown(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        f'{{"number": "{PAN}", '.encode(),
        f'{{"number": "{PAN}"}}'.encode() + b"\xff",
    ],
    ids=["not-json", "not-utf-8"],
)
def test_a_body_refused_before_parsing_shows_no_card_number_it_carried(body: bytes) -> None:
    with pytest.raises(MalformedMessage) as caught:
        check_strict_json(body)
    assert caught.value.__cause__ is None
    assert PAN not in shown(caught.value)

"""Card data sealed to the card workers' key, bound to the signed header."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.details import SealedCard
from common.errors import SealedDataInvalid
from common.sealing import CardData, open_card, seal_card
from producer.encode import SealingKey

PAN = "4111111111111111"
CVC = "737"
AAD = b"paymq.payment_request.v1\nproducer-1\ncard\nmsg-1\n1000\n2000\n"


@pytest.fixture(scope="module")
def private_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def card() -> CardData:
    return CardData(number=PAN, exp_month=12, exp_year=2030, cvc=CVC)


@pytest.fixture(scope="module")
def sealed(card: CardData, private_key: X25519PrivateKey) -> SealedCard:
    return seal_card(card, kid="seal-1", public_key=private_key.public_key(), aad=AAD)


def open_with(sealed: SealedCard, private_key: X25519PrivateKey, aad: bytes = AAD) -> CardData:
    return open_card(sealed, private_keys={"seal-1": private_key}, aad=aad)


def test_sealed_card_data_opens_with_the_same_key_and_header(
    sealed: SealedCard, private_key: X25519PrivateKey, card: CardData
):
    assert open_with(sealed, private_key) == card


def test_each_seal_uses_a_fresh_data_key_and_nonce(
    card: CardData, private_key: X25519PrivateKey, sealed: SealedCard
):
    again = seal_card(card, kid="seal-1", public_key=private_key.public_key(), aad=AAD)
    assert again.wrapped_key != sealed.wrapped_key
    assert again.nonce != sealed.nonce


@pytest.mark.parametrize(
    "aad",
    [AAD.replace(b"msg-1", b"msg-2"), AAD.replace(b"card", b"cart"), b"", AAD + b"x"],
    ids=["other-message-id", "other-route", "empty", "longer"],
)
def test_sealed_data_does_not_open_under_another_signed_header(
    sealed: SealedCard, private_key: X25519PrivateKey, aad: bytes
):
    with pytest.raises(SealedDataInvalid, match="does not open"):
        open_with(sealed, private_key, aad)


def test_sealed_data_does_not_open_with_another_private_key(sealed: SealedCard):
    with pytest.raises(SealedDataInvalid, match="does not open"):
        open_with(sealed, X25519PrivateKey.generate())


def test_sealed_data_for_an_unknown_kid_does_not_open(
    sealed: SealedCard, private_key: X25519PrivateKey
):
    with pytest.raises(SealedDataInvalid, match="no private sealing key 'seal-9'"):
        open_with(sealed.model_copy(update={"kid": "seal-9"}), private_key)


@pytest.mark.parametrize("field", ["wrapped_key", "nonce", "ciphertext"])
def test_any_flipped_byte_of_the_sealed_parts_makes_it_invalid(
    sealed: SealedCard, private_key: X25519PrivateKey, field: str
):
    raw = base64.b64decode(getattr(sealed, field))
    for index in range(len(raw)):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        damaged = sealed.model_copy(update={field: base64.b64encode(flipped).decode()})
        with pytest.raises(SealedDataInvalid):
            open_with(damaged, private_key)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", "!!!!"),
        ("nonce", base64.b64encode(b"short").decode()),
        ("wrapped_key", base64.b64encode(b"x" * 10).decode()),
        ("ciphertext", ""),
    ],
    ids=["nonce-not-base64", "nonce-length", "wrapped-key-truncated", "ciphertext-empty"],
)
def test_malformed_sealed_parts_are_invalid(
    sealed: SealedCard, private_key: X25519PrivateKey, field: str, value: str
):
    with pytest.raises(SealedDataInvalid):
        open_with(sealed.model_copy(update={field: value}), private_key)


def test_sealed_plaintext_that_is_not_card_data_is_invalid(private_key: X25519PrivateKey):
    not_a_card = CardData.model_construct(number="x", exp_month=99, exp_year=1, cvc=None)
    sealed = seal_card(not_a_card, kid="seal-1", public_key=private_key.public_key(), aad=AAD)
    with pytest.raises(SealedDataInvalid, match="not valid card data"):
        open_with(sealed, private_key)


def test_card_data_repr_and_str_never_show_the_number_or_cvc(card: CardData):
    for text in (repr(card), str(card), card.masked()):
        assert PAN not in text
        assert CVC not in text
    assert card.masked() == "**** **** **** 1111"
    assert card.last4 == "1111"


def test_a_sealed_card_never_carries_the_pan_digits(sealed: SealedCard):
    wire = sealed.model_dump_json()
    assert PAN not in wire
    assert PAN not in base64.b64decode(sealed.ciphertext).decode("latin-1")


def test_an_encoded_request_with_card_data_never_carries_the_pan(
    make_request: Callable[..., Any],
    card: CardData,
    sealing_key: SealingKey,
):
    request, message = make_request(card_token=None, card=card, message_id="msg-1")
    assert PAN.encode() not in message.body
    assert CVC.encode() not in message.body
    assert request.details.source.kid == sealing_key.kid  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "changes",
    [{"number": "41111"}, {"number": "4111 1111 1111 1111"}, {"exp_month": 13}, {"cvc": "12"}],
)
def test_card_data_refuses_malformed_fields(changes: dict[str, Any]):
    with pytest.raises(ValueError, match="validation error"):
        CardData.model_validate({"number": PAN, "exp_month": 1, "exp_year": 2030, **changes})

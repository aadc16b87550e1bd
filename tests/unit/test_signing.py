"""Ed25519 over the signing input: the signed fields, then the exact body bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.errors import ConfigurationError, KeyNotAllowed, SignatureInvalid, UnknownKey
from common.keygen import init_keys, set_status
from common.keyring import PRIVATE_DIR, Keyring, KeyRole, KeyStatus
from common.signing import REQUEST_TYPE, RESULT_TYPE, SignedFields, Signer, verify

BODY = b'{"payment": 1}'


def fields(**changes: object) -> SignedFields:
    values: dict[str, object] = {
        "message_type": REQUEST_TYPE,
        "key_id": "producer-1",
        "route": "card",
        "message_id": "msg-1",
        "created_at_ms": 1_000,
        "expires_at_ms": 2_000,
    }
    return SignedFields(**{**values, **changes})  # type: ignore[arg-type]


def test_the_signing_input_is_the_newline_separated_fields_then_the_body():
    assert fields().signing_input(BODY) == (
        b"paymq.payment_request.v1\nproducer-1\ncard\nmsg-1\n1000\n2000\n" + BODY
    )


def test_a_signature_verifies_over_the_same_fields_and_body(
    keyring: Keyring, signer: Callable[[str], Signer]
):
    signature = signer("producer-1").sign(fields(), BODY)
    assert len(signature) == 64
    verify(keyring, fields(), BODY, signature)


@pytest.mark.parametrize(
    "changes",
    [
        {"message_type": RESULT_TYPE},
        {"route": "digital_currency"},
        {"message_id": "msg-2"},
        {"created_at_ms": 1_001},
        {"expires_at_ms": 0},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_a_signature_does_not_verify_for_any_other_signed_field(
    keyring: Keyring, signer: Callable[[str], Signer], changes: dict[str, object]
):
    signature = signer("producer-1").sign(fields(), BODY)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(keyring, fields(**changes), BODY, signature)


def test_a_signature_made_by_another_key_does_not_verify(
    keyring: Keyring, signer: Callable[[str], Signer]
):
    signature = signer("producer-dc").sign(fields(key_id="producer-dc"), BODY)
    with pytest.raises(SignatureInvalid):
        verify(keyring, fields(), BODY, signature)


def test_a_tampered_body_does_not_verify(keyring: Keyring, signer: Callable[[str], Signer]):
    signature = signer("producer-1").sign(fields(), BODY)
    with pytest.raises(SignatureInvalid):
        verify(keyring, fields(), BODY.replace(b"1", b"2"), signature)


@pytest.mark.parametrize("length", [0, 32, 63, 65])
def test_a_signature_of_the_wrong_length_is_invalid(
    keyring: Keyring, signer: Callable[[str], Signer], length: int
):
    signature = (signer("producer-1").sign(fields(), BODY) * 2)[:length]
    with pytest.raises(SignatureInvalid, match="Ed25519 has 64"):
        verify(keyring, fields(), BODY, signature)


def test_an_unknown_key_id_is_refused(keyring: Keyring):
    with pytest.raises(UnknownKey):
        verify(keyring, fields(key_id="nobody"), BODY, b"\0" * 64)


def test_a_sealing_key_never_verifies_signatures(keyring: Keyring):
    with pytest.raises(KeyNotAllowed, match="not a signing key"):
        verify(keyring, fields(key_id="seal-1"), BODY, b"\0" * 64)


def test_a_signer_refuses_fields_naming_another_key(signer: Callable[[str], Signer]):
    with pytest.raises(ValueError, match="this signer is 'producer-1'"):
        signer("producer-1").sign(fields(key_id="producer-dc"), BODY)


def test_a_signer_repr_shows_only_its_key_id(keys_dir: Path, signer: Callable[[str], Signer]):
    pem = (keys_dir / PRIVATE_DIR / "producer-1.pem").read_text()
    key_line = pem.splitlines()[1]
    text = repr(signer("producer-1"))
    assert text == "Signer(key_id='producer-1')"
    assert key_line not in text


def test_loading_a_missing_private_key_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="no private key"):
        Signer.load(tmp_path, "absent")


def test_a_worker_refuses_to_sign_with_a_key_its_keyring_phased_out(tmp_path: Path):
    init_keys(tmp_path, producer_key_id="p-1", worker_key_id="w-1", sealing_key_id="s-1")
    assert Signer.for_role(tmp_path, "w-1", KeyRole.WORKER).key_id == "w-1"
    set_status(tmp_path, "w-1", KeyStatus.RETIRING)
    with pytest.raises(ConfigurationError, match="'w-1' is retiring"):
        Signer.for_role(tmp_path, "w-1", KeyRole.WORKER)


def test_loading_a_file_that_is_not_pem_is_a_configuration_error(tmp_path: Path):
    (tmp_path / PRIVATE_DIR).mkdir()
    (tmp_path / PRIVATE_DIR / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigurationError, match="not a PEM private key"):
        Signer.load(tmp_path, "junk")


def test_loading_an_x25519_key_as_a_signer_is_a_configuration_error(tmp_path: Path):
    (tmp_path / PRIVATE_DIR).mkdir()
    pem = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / PRIVATE_DIR / "x.pem").write_bytes(pem)
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        Signer.load(tmp_path, "x")


@pytest.mark.parametrize("name", ["message_type", "key_id", "route", "message_id"])
@pytest.mark.parametrize(
    "value",
    ["", "a\nb", "a b", "a\rb", "a/b", "a\x00b", "clé", "x" * 129, "a\tb", "a;b"],
    ids=["empty", "lf", "space", "cr", "slash", "nul", "non-ascii", "too-long", "tab", "semi"],
)
def test_signed_fields_refuse_characters_that_could_blur_the_signing_input(name: str, value: str):
    with pytest.raises(SignatureInvalid, match=name):
        fields(**{name: value})


@pytest.mark.parametrize("name", ["created_at_ms", "expires_at_ms"])
@pytest.mark.parametrize("value", [-1, True, 1.5, "1000", None])
def test_signed_times_must_be_non_negative_integers(name: str, value: object):
    with pytest.raises(SignatureInvalid, match=name):
        fields(**{name: value})


def test_signed_fields_accept_the_whole_token_alphabet():
    token = "Az09._:-" + "x" * 120
    assert fields(message_id=token, key_id=token).message_id == token

"""Card data sealed for the card workers only (PCI DSS: a PAN is unreadable wherever it rests,
and a durable queue, its dead-letter queue and the logs are all places it would rest).

Per message (docs/protocol.md#card-data-sealing):
1. a fresh 256-bit data key encrypts the card data JSON with AES-256-GCM, the signed header
   prefix (common/signing.py) as associated data, so the ciphertext opens only inside the
   message it was made for;
2. the data key is wrapped to the card worker's X25519 public key with HPKE (RFC 9180, base mode,
   DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) as implemented by `cryptography`, with
   info = "paymq.card_data.v1\\n" + sealing key id.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.details import SealedCard
from common.errors import ConfigurationError, MalformedMessage, SealedDataInvalid
from common.keyring import PRIVATE_DIR, Keyring, KeyRole
from common.strictjson import check_strict_json

HPKE_INFO_PREFIX = b"paymq.card_data.v1\n"
NONCE_BYTES = 12
SEALING_ALGORITHM = "HPKE-X25519-SHA256-A256GCM+A256GCM"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class CardData(BaseModel):
    """The sealed plaintext. Its repr never shows the number or the CVC."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    number: Annotated[str, Field(pattern=r"^[0-9]{12,19}$", repr=False)]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    cvc: Annotated[str | None, Field(pattern=r"^[0-9]{3,4}$", repr=False)] = None

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def masked(self) -> str:
        return f"**** **** **** {self.last4}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SealedDataInvalid(f"sealed card {field} is not base64") from exc


def _info(kid: str) -> bytes:
    return HPKE_INFO_PREFIX + kid.encode("ascii")


def seal_card(card: CardData, *, kid: str, public_key: X25519PublicKey, aad: bytes) -> SealedCard:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    plaintext = card.model_dump_json().encode()
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    wrapped_key = _SUITE.encrypt(data_key, public_key, info=_info(kid))
    return SealedCard(
        alg=SEALING_ALGORITHM,
        kid=kid,
        wrapped_key=_b64(wrapped_key),
        nonce=_b64(nonce),
        ciphertext=_b64(ciphertext),
    )


def open_card(
    sealed: SealedCard, *, private_keys: Mapping[str, X25519PrivateKey], aad: bytes
) -> CardData:
    """Unseal inside the card worker; any mismatch (key, header, bytes) is SealedDataInvalid."""
    private_key = private_keys.get(sealed.kid)
    if private_key is None:
        raise SealedDataInvalid(f"no private sealing key {sealed.kid!r} on this worker")
    nonce = _unb64(sealed.nonce, "nonce")
    if len(nonce) != NONCE_BYTES:
        raise SealedDataInvalid("sealed card nonce must be 12 bytes")
    try:
        data_key = _SUITE.decrypt(
            _unb64(sealed.wrapped_key, "wrapped_key"), private_key, info=_info(sealed.kid)
        )
        plaintext = AESGCM(data_key).decrypt(nonce, _unb64(sealed.ciphertext, "ciphertext"), aad)
    except (InvalidTag, ValueError):
        # Not kept as the cause: an error of the cryptography around the private key.
        raise SealedDataInvalid("sealed card data does not open with this key and header") from None
    try:
        check_strict_json(plaintext)
        return CardData.model_validate_json(plaintext)
    except (MalformedMessage, ValidationError):
        # Not kept as the cause: its text quotes the card data it refuses.
        raise SealedDataInvalid("sealed card data is not valid card data") from None


def load_sealing_private_keys(keys_dir: Path, keyring: Keyring) -> dict[str, X25519PrivateKey]:
    """Private keys for every sealing key in the keyring whose private file is present."""
    keys: dict[str, X25519PrivateKey] = {}
    for trusted in keyring.trusted_keys():
        path = keys_dir / PRIVATE_DIR / f"{trusted.key_id}.pem"
        if trusted.role is not KeyRole.SEALING or not path.exists():
            continue
        keys[trusted.key_id] = load_sealing_private_key(path)
    return keys


def load_sealing_private_key(path: Path) -> X25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        # Not kept as the cause: an error of the cryptography reading a private key.
        raise ConfigurationError(f"{path} is not a PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise ConfigurationError(f"{path} is not an X25519 key")
    return key

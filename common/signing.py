"""Ed25519 signatures over the exact bytes sent.

What is signed (docs/protocol.md#signatures) is the *signing input*:

    <message type>\\n<key id>\\n<route>\\n<message id>\\n<created ms>\\n<expires ms>\\n<body bytes>

The message type is a version/context prefix ("paymq.payment_request.v1" or
"paymq.payment_result.v1"), so a signature made for one kind of message never verifies as the
other. The route is the channel for requests and the routing key for results. Every field before
the body is restricted to characters that cannot contain a newline, so the input is unambiguous.
The body is signed as the bytes on the wire: it is never re-serialized to verify.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import ConfigurationError, SignatureInvalid, UnknownKey
from common.keyring import PRIVATE_DIR, TRUSTED_DIR, Keyring, KeyRole

REQUEST_TYPE = "paymq.payment_request.v1"
RESULT_TYPE = "paymq.payment_result.v1"
SIGNATURE_BYTES = 64

_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True, slots=True)
class SignedFields:
    """Everything a signature binds besides the body."""

    message_type: str
    key_id: str
    route: str
    message_id: str
    created_at_ms: int
    #: 0 means the message never expires (result events).
    expires_at_ms: int

    def __post_init__(self) -> None:
        for name in ("message_type", "key_id", "route", "message_id"):
            if not _TOKEN.fullmatch(getattr(self, name)):
                raise SignatureInvalid(f"{name} has characters or a length a signature forbids")
        for name in ("created_at_ms", "expires_at_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SignatureInvalid(f"{name} must be a non-negative integer")

    def prefix(self) -> bytes:
        """The signing input without the body; also the associated data of sealed card data."""
        return (
            f"{self.message_type}\n{self.key_id}\n{self.route}\n{self.message_id}\n"
            f"{self.created_at_ms}\n{self.expires_at_ms}\n"
        ).encode("ascii")

    def signing_input(self, body: bytes) -> bytes:
        return self.prefix() + body


class Signer:
    """Signs with one private key under its key id."""

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.key_id = key_id
        self._private_key = private_key

    def __repr__(self) -> str:  # never show key material
        return f"Signer(key_id={self.key_id!r})"

    def sign_raw(self, data: bytes) -> bytes:
        """Sign bytes that carry their own context prefix (e.g. a worker's retry state)."""
        return self._private_key.sign(data)

    def sign(self, fields: SignedFields, body: bytes) -> bytes:
        if fields.key_id != self.key_id:
            raise ValueError(f"fields name key {fields.key_id!r}; this signer is {self.key_id!r}")
        return self._private_key.sign(fields.signing_input(body))

    @classmethod
    def load(cls, keys_dir: Path, key_id: str) -> Signer:
        path = keys_dir / PRIVATE_DIR / f"{key_id}.pem"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"no private key {path} (create one with `paymq keys generate`)"
            ) from exc
        except ValueError:
            # Not kept as the cause: an error of the cryptography reading a private key.
            raise ConfigurationError(f"{path} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigurationError(f"{path} is not an Ed25519 key")
        return cls(key_id, key)

    @classmethod
    def for_role(cls, keys_dir: Path, key_id: str, role: KeyRole) -> Signer:
        """`load`, refusing a key that this host's keyring has in another role, retiring or
        retired (a rotation that missed this process). A key the keyring lacks is left to the
        verifiers, which refuse it if they lack it too."""
        trusted = keys_dir / TRUSTED_DIR
        if trusted.is_dir():
            with contextlib.suppress(UnknownKey):
                Keyring.load(trusted).signing_entry(key_id, role)
        return cls.load(keys_dir, key_id)


def verify(keyring: Keyring, fields: SignedFields, body: bytes, signature: bytes) -> None:
    """Check the signature with the key its key id names.

    Raises SignatureInvalid, UnknownKey or KeyNotAllowed (not a signing key). The algorithm is
    pinned by the key id: only Ed25519 keys verify signatures. What the key may sign is checked
    separately (Keyring.authorize), once the route is known to match.
    """
    public_key = keyring.verification_key(fields.key_id)
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureInvalid(f"signature is {len(signature)} bytes; Ed25519 has 64")
    try:
        public_key.verify(signature, fields.signing_input(body))
    except InvalidSignature as exc:
        raise SignatureInvalid("signature does not match the message") from exc

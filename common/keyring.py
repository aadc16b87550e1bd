"""Trusted public keys: who may sign what.

A keyring is a directory of JSON files, one per key (docs/protocol.md#keyring). Each key has an
owner, a role (a producer signs requests, a worker signs results, a sealing key receives card
data), the channels it is allowed for, and a status. Several keys per owner make rotation safe
(docs/protocol.md#rotation): trust the new public key everywhere, switch the signer, mark the
old key `retiring` (what it signed still verifies; nobody signs with it any more), and
`retired` once nothing it signed can still arrive.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import ConfigurationError, KeyNotAllowed, UnknownKey

KeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,64}$")]
TRUSTED_DIR = "trusted"
PRIVATE_DIR = "private"


class KeyRole(StrEnum):
    PRODUCER = "producer"
    #: Signs requests like a producer, on behalf of the HTTP API's tenants. Its owner holds no
    #: producer key, so a tenant's idempotency keys never share a scope with a producer's.
    GATEWAY = "gateway"
    WORKER = "worker"
    SEALING = "sealing"


#: The roles whose signature a payment request may carry.
REQUEST_SIGNERS = (KeyRole.PRODUCER, KeyRole.GATEWAY)


class KeyStatus(StrEnum):
    #: Verifies, and signs (a sealing key: is sealed to).
    ACTIVE = "active"
    #: Verifies what it signed before, signs nothing new: a signer refuses to start with it, and
    #: producers seal to it no more. Messages in flight under an old key stay good meanwhile.
    RETIRING = "retiring"
    #: Refused: its signatures are `key_not_allowed`.
    RETIRED = "retired"

    @property
    def verifies(self) -> bool:
        return self is not KeyStatus.RETIRED


class TrustedKey(BaseModel):
    """One public key and what it is allowed to do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: KeyId
    owner: Annotated[str, Field(min_length=1, max_length=64)]
    role: KeyRole
    algorithm: Literal["ed25519", "x25519"]
    #: The raw 32-byte public key, standard base64.
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]
    channels: tuple[str, ...]
    status: KeyStatus = KeyStatus.ACTIVE

    def raw_public_key(self) -> bytes:
        return base64.b64decode(self.public_key)


class KeyringSource(Protocol):
    """The keyring as it is now: a fixed Keyring is its own source; a running worker's is the
    trusted directory, read again when it changes (common.privatefiles.Reloading)."""

    def current(self) -> Keyring: ...


class Keyring:
    """An immutable set of trusted keys with their public-key objects loaded once."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys: dict[str, TrustedKey] = {}
        self._ed25519: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise ConfigurationError(f"key id {key.key_id!r} appears twice in the keyring")
            expected = "x25519" if key.role is KeyRole.SEALING else "ed25519"
            if key.algorithm != expected:
                raise ConfigurationError(f"{key.role} key {key.key_id!r} must be {expected}")
            self._keys[key.key_id] = key
            if key.algorithm == "ed25519":
                self._ed25519[key.key_id] = Ed25519PublicKey.from_public_bytes(key.raw_public_key())
        _refuse_shared_scopes(self._keys.values())

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        """Load every `*.json` in `directory`; a malformed file stops start-up."""
        if not directory.is_dir():
            raise ConfigurationError(
                f"keyring directory {directory} does not exist (create keys with "
                "`paymq keys init` or `paymq keys generate`)"
            )
        keys = []
        for path in sorted(directory.glob("*.json")):
            try:
                keys.append(TrustedKey.model_validate_json(path.read_bytes()))
            except ValidationError as exc:
                raise ConfigurationError(f"{path}: not a valid trusted key: {exc}") from exc
        return cls(keys)

    def current(self) -> Keyring:
        """A fixed keyring, as a KeyringSource."""
        return self

    def __len__(self) -> int:
        return len(self._keys)

    def trusted_keys(self) -> list[TrustedKey]:
        return list(self._keys.values())

    def get(self, key_id: str) -> TrustedKey:
        try:
            return self._keys[key_id]
        except KeyError as exc:
            raise UnknownKey(f"key {key_id!r} is not in the keyring") from exc

    def verification_key(self, key_id: str) -> Ed25519PublicKey:
        self.get(key_id)
        try:
            return self._ed25519[key_id]
        except KeyError as exc:
            raise KeyNotAllowed(f"key {key_id!r} is not a signing key") from exc

    def authorize(
        self, key_id: str, *, role: KeyRole | tuple[KeyRole, ...], channel: str
    ) -> TrustedKey:
        """The key, if it still verifies (active or retiring), has `role` (one of them) and is
        allowed for `channel`."""
        key = self.get(key_id)
        roles = (role,) if isinstance(role, KeyRole) else role
        if not key.status.verifies:
            raise KeyNotAllowed(f"key {key_id!r} is {key.status.value}")
        if key.role not in roles:
            wanted = " or ".join(r.value for r in roles)
            raise KeyNotAllowed(f"key {key_id!r} is a {key.role.value} key, not {wanted}")
        if channel not in key.channels:
            raise KeyNotAllowed(f"key {key_id!r} is not allowed for channel {channel!r}")
        return key

    def signing_entry(self, key_id: str, role: KeyRole) -> TrustedKey:
        """The entry of a key this process is about to sign with: UnknownKey if the keyring
        lacks it, ConfigurationError if it has another role or is not active (a retiring key
        signs nothing new: a signer still set to it was missed by a rotation)."""
        key = self.get(key_id)
        if key.role is not role:
            raise ConfigurationError(
                f"key {key_id!r} is a {key.role.value} key; this process signs with a "
                f"{role.value} key"
            )
        if key.status is not KeyStatus.ACTIVE:
            raise ConfigurationError(
                f"key {key_id!r} is {key.status.value}: nothing new is signed with it; set this "
                "process to sign with the key that replaces it (docs/protocol.md#rotation)"
            )
        return key

    def sealing_key(self, channel: str, key_id: str | None = None) -> tuple[str, X25519PublicKey]:
        """The sealing key to encrypt card data with: `key_id` if given, else the only active
        sealing key for `channel`. During a rotation two are active; then name one."""
        active = [
            k
            for k in self._keys.values()
            if k.role is KeyRole.SEALING and k.status is KeyStatus.ACTIVE and channel in k.channels
        ]
        if key_id is not None:
            active = [k for k in active if k.key_id == key_id]
        if not active:
            wanted = f"{key_id!r}" if key_id else "any"
            raise ConfigurationError(f"no active sealing key ({wanted}) for channel {channel!r}")
        if len(active) > 1:
            ids = ", ".join(sorted(k.key_id for k in active))
            raise ConfigurationError(
                f"several active sealing keys for {channel!r} ({ids}): set PAYMQ_SEALING_KEY_ID"
            )
        key = active[0]
        return key.key_id, X25519PublicKey.from_public_bytes(key.raw_public_key())


def write_trusted_key(directory: Path, key: TrustedKey) -> Path:
    """Write `<key id>.json` whole: a temporary file (which no `*.json` glob matches) renamed
    over it. Running processes read the directory again when it changes; half a file would
    be a broken keyring to them."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key.key_id}.json"
    temporary = directory / f".{key.key_id}.json.tmp"
    temporary.write_text(json.dumps(key.model_dump(mode="json"), indent=2) + "\n")
    temporary.replace(path)
    return path


def _refuse_shared_scopes(keys: Iterable[TrustedKey]) -> None:
    """Idempotency is scoped by the signing key's owner: an owner holding both producer and
    gateway keys would let a producer's idempotency key meet an API tenant's."""
    by_role: dict[KeyRole, set[str]] = {KeyRole.PRODUCER: set(), KeyRole.GATEWAY: set()}
    for key in keys:
        if key.role in by_role:
            by_role[key.role].add(key.owner)
    shared = by_role[KeyRole.PRODUCER] & by_role[KeyRole.GATEWAY]
    if shared:
        raise ConfigurationError(
            f"owner {sorted(shared)[0]!r} holds both producer and gateway keys: give the HTTP "
            "API's gateway key an owner of its own, so that API tenants and producers never "
            "share idempotency keys"
        )

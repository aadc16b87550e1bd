"""Key generation: a private key file (0600) and its trusted public key entry.

Layout under a keys directory:

    private/<key id>.pem     PKCS#8 PEM private key, readable by its owner only
    trusted/<key id>.json    the public key with owner, role, channels, status (the keyring)
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.details import CHANNELS
from common.errors import ConfigurationError
from common.keyring import (
    PRIVATE_DIR,
    TRUSTED_DIR,
    Keyring,
    KeyRole,
    KeyStatus,
    TrustedKey,
    write_trusted_key,
)

#: The card sealing key `paymq keys init` makes.
INITIAL_SEALING_KEY_ID = "card-seal-1"

#: Who holds each role's private keys unless told otherwise: the owners `init_keys` gives. A
#: new gateway key keeps the gateway's owner, which holds no producer key (docs/protocol.md).
DEFAULT_OWNERS = {
    KeyRole.PRODUCER: "producer",
    KeyRole.GATEWAY: "api-gateway",
    KeyRole.WORKER: "worker",
    KeyRole.SEALING: "card-workers",
}


@dataclass(frozen=True)
class GeneratedKey:
    key_id: str
    private_path: Path
    trusted_path: Path


def _write_private(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start: never a moment where the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def generate_key(
    keys_dir: Path,
    *,
    key_id: str,
    role: KeyRole,
    channels: tuple[str, ...],
    owner: str | None = None,
) -> GeneratedKey:
    """Create a key pair; refuses to overwrite an existing private key, and a key the keyring
    would refuse beside the others (a key id it has, an owner holding both producer and
    gateway keys): every process that reads the keyring would stop at its next start.
    `owner` defaults to the role's (DEFAULT_OWNERS)."""
    private_path = keys_dir / PRIVATE_DIR / f"{key_id}.pem"
    if private_path.exists():
        raise ConfigurationError(f"{private_path} already exists; choose another key id")
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise ConfigurationError(f"unknown channels {sorted(unknown)}; known: {list(CHANNELS)}")
    private: Ed25519PrivateKey | X25519PrivateKey
    if role is KeyRole.SEALING:
        private, algorithm = X25519PrivateKey.generate(), "x25519"
    else:
        private, algorithm = Ed25519PrivateKey.generate(), "ed25519"
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    trusted = TrustedKey(
        key_id=key_id,
        owner=owner or DEFAULT_OWNERS[role],
        role=role,
        algorithm=algorithm,
        public_key=base64.b64encode(raw_public).decode(),
        channels=channels,
        status=KeyStatus.ACTIVE,
    )
    # Validate everything before writing anything.
    _refuse_in_keyring(keys_dir / TRUSTED_DIR, trusted)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(private_path, pem)
    trusted_path = write_trusted_key(keys_dir / TRUSTED_DIR, trusted)
    return GeneratedKey(key_id=key_id, private_path=private_path, trusted_path=trusted_path)


def init_keys(
    keys_dir: Path,
    *,
    producer_key_id: str,
    worker_key_id: str,
    sealing_key_id: str,
    gateway_key_id: str = "gateway-1",
) -> list[GeneratedKey]:
    """A working set for one deployment: a producer key, the HTTP API's gateway key (an owner
    of its own), a worker key and a card sealing key. A role the keyring already has a key of
    gets none, so this is safe to run at every start, after a rotation too: the first keys,
    once removed, do not come back as new active keys beside their successors."""
    wanted = [
        (producer_key_id, KeyRole.PRODUCER, CHANNELS),
        (gateway_key_id, KeyRole.GATEWAY, CHANNELS),
        (worker_key_id, KeyRole.WORKER, CHANNELS),
        (sealing_key_id, KeyRole.SEALING, ("card",)),
    ]
    trusted_dir = keys_dir / TRUSTED_DIR
    present = (
        {key.role for key in Keyring.load(trusted_dir).trusted_keys()}
        if trusted_dir.is_dir()
        else set()
    )
    created = []
    for key_id, role, channels in wanted:
        if role in present or (keys_dir / PRIVATE_DIR / f"{key_id}.pem").exists():
            continue
        created.append(generate_key(keys_dir, key_id=key_id, role=role, channels=channels))
    return created


def _refuse_in_keyring(trusted_dir: Path, new: TrustedKey) -> None:
    """ConfigurationError if the keyring in `trusted_dir` would not load with `new` in it."""
    existing = Keyring.load(trusted_dir).trusted_keys() if trusted_dir.is_dir() else []
    try:
        Keyring([*existing, new])
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc}; nothing was written") from None


def set_status(keys_dir: Path, key_id: str, status: KeyStatus) -> Path:
    """Phase out, retire (or reactivate) a trusted key: a retiring key still verifies and signs
    nothing new, a retired key's signatures are refused."""
    path = keys_dir / TRUSTED_DIR / f"{key_id}.json"
    if not path.exists():
        raise ConfigurationError(f"no trusted key {path}")
    key = TrustedKey.model_validate_json(path.read_bytes())
    return write_trusted_key(path.parent, key.model_copy(update={"status": status}))


def remove_key(keys_dir: Path, key_id: str) -> list[Path]:
    """Delete a retired key's trusted entry and, if this directory holds it, its private key:
    the last step of a rotation. Only a retired key: removing one that still verifies would
    refuse what it signed without the step that says so (docs/protocol.md#rotation)."""
    path = keys_dir / TRUSTED_DIR / f"{key_id}.json"
    if not path.exists():
        raise ConfigurationError(f"no trusted key {path}")
    key = TrustedKey.model_validate_json(path.read_bytes())
    if key.status is not KeyStatus.RETIRED:
        raise ConfigurationError(
            f"key {key_id!r} is {key.status.value}: retire it first (`paymq keys retire "
            f"{key_id}`), once nothing it signed can still arrive"
        )
    removed = [path]
    private = keys_dir / PRIVATE_DIR / f"{key_id}.pem"
    if private.exists():
        removed.append(private)
    for each in removed:
        each.unlink()
    return removed

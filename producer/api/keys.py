"""API keys of the HTTP API. A key is a random secret shown to its caller once; the API keeps
only its SHA-256 (the secret has 256 bits of entropy, so a slow hash would add nothing), with the
channels the caller may pay on, in PAYMQ_API_KEYS_FILE. A caller sends it as
`Authorization: Bearer pmq_...`. Why keys rather than HMAC-signed requests: docs/api.md."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.details import CHANNELS
from common.errors import ConfigurationError
from common.privatefiles import Reloading, write_private_json

PREFIX = "pmq_"
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_ID_CHARS = 32


@dataclass(frozen=True)
class ApiKey:
    id: str
    sha256: str
    channels: tuple[str, ...]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """The keys in `path`; none when it does not exist. ConfigurationError if malformed."""
        if not path.exists():
            return cls(())
        try:
            entries = json.loads(path.read_text())["keys"]
            keys = [ApiKey(e["id"], e["sha256"], tuple(e["channels"])) for e in entries]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"cannot read API keys from {path}: {exc!r}") from exc
        for key in keys:
            _check(key)
        if len({key.id for key in keys}) != len(keys):
            raise ConfigurationError(f"{path} names an API key id twice")
        return cls(keys)

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key whose secret this is; every key is compared, in constant time each."""
        presented_digest = digest(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, presented_digest):
                found = key
        return found


def keys_file(path: Path) -> Reloading[ApiKeys]:
    """The keys as the file says now, read again when it changes: `paymq api keys add` and
    `remove` count for a running API from its next request, without a restart."""
    return Reloading(path, ApiKeys.load)


def remove_key(path: Path, key_id: str) -> None:
    """Revoke a key: its secret stops working at the API's next request."""
    existing = ApiKeys.load(path).keys
    if not any(key.id == key_id for key in existing):
        raise ConfigurationError(f"no API key {key_id!r} in {path}")
    _write(path, [key for key in existing if key.id != key_id])


def add_key(path: Path, key_id: str, channels: Sequence[str]) -> str:
    """Create a key, store its digest in `path` (mode 0600), and return the secret: the only
    time it is shown."""
    existing = ApiKeys.load(path).keys
    if any(key.id == key_id for key in existing):
        raise ConfigurationError(f"an API key {key_id!r} exists already in {path}")
    secret = PREFIX + secrets.token_urlsafe(32)
    new = ApiKey(key_id, digest(secret), tuple(channels))
    _check(new)
    _write(path, [*existing, new])
    return secret


def _write(path: Path, keys: Sequence[ApiKey]) -> None:
    body = {"keys": [{"id": k.id, "sha256": k.sha256, "channels": list(k.channels)} for k in keys]}
    write_private_json(path, body)


def _check(key: ApiKey) -> None:
    if not key.id or len(key.id) > _MAX_ID_CHARS or not set(key.id) <= _ID_CHARS:
        raise ConfigurationError(
            f"API key id {key.id!r}: 1-{_MAX_ID_CHARS} of a-z, 0-9, '_', '.', '-'"
        )
    unknown = [channel for channel in key.channels if channel not in CHANNELS]
    if not key.channels or unknown:
        raise ConfigurationError(
            f"API key {key.id!r}: channels must be some of {', '.join(CHANNELS)}"
        )
    if len(key.sha256) != 64:
        raise ConfigurationError(f"API key {key.id!r}: sha256 must be 64 hex digits")

"""The private sealing keys a card worker opens card data with, as its keys directory is now.

A card worker opens card data sealed to any sealing key its keyring lists (active, retiring or
retired) whose private file it holds. Both are read as they are now: the keyring from the
worker's reloading source, a private file the first time a message names its key. So a sealing
key added during a rotation (docs/protocol.md#rotation) opens without a restart, and one whose
trusted entry is removed opens no more. Every private file present at start-up is read then, so
a file that is not an X25519 key stops the worker before it takes a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.errors import ConfigurationError
from common.keyring import PRIVATE_DIR, KeyringSource, KeyRole
from common.sealing import load_sealing_private_key, load_sealing_private_keys

logger = logging.getLogger("paymq.keys")


class SealingKeys(Mapping[str, X25519PrivateKey]):
    def __init__(self, keys_dir: Path, keyrings: KeyringSource) -> None:
        self._keys_dir = keys_dir
        self._keyrings = keyrings
        self._lock = threading.Lock()
        self._loaded = load_sealing_private_keys(keys_dir, keyrings.current())

    def __getitem__(self, key_id: str) -> X25519PrivateKey:
        if key_id not in self._listed():
            raise KeyError(key_id)
        with self._lock:
            private = self._loaded.get(key_id)
            if private is None:
                private = self._read(key_id)
                self._loaded[key_id] = private
            return private

    def __iter__(self) -> Iterator[str]:
        return iter([key_id for key_id in self._listed() if key_id in self._loaded])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _listed(self) -> set[str]:
        """The sealing keys the keyring lists now, whatever their status."""
        return {
            key.key_id
            for key in self._keyrings.current().trusted_keys()
            if key.role is KeyRole.SEALING
        }

    def _read(self, key_id: str) -> X25519PrivateKey:
        path = self._keys_dir / PRIVATE_DIR / f"{key_id}.pem"
        if not path.exists():
            raise KeyError(key_id)
        try:
            return load_sealing_private_key(path)
        except (ConfigurationError, OSError) as exc:
            # Not this message's fault, nor a reason to stop: it is refused as sealed to a key
            # this worker cannot use, and the file is read again for the next one.
            logger.error("sealing key %s unusable: %s", key_id, exc)
            raise KeyError(key_id) from None

"""Session-wide keys for the property tests (hypothesis reruns a test body many times, so
anything expensive is built once)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.clock import SystemClock
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.signing import Signer
from producer.encode import SealingKey
from store.claims import Claims
from store.database import create_store_engine, upgrade


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    init_keys(root, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1")
    return root


@pytest.fixture(scope="session")
def keyring(keys_dir: Path) -> Keyring:
    return Keyring.load(keys_dir / TRUSTED_DIR)


@pytest.fixture(scope="session")
def producer(keys_dir: Path) -> Signer:
    return Signer.load(keys_dir, "producer-1")


@pytest.fixture(scope="session")
def worker(keys_dir: Path) -> Signer:
    return Signer.load(keys_dir, "worker-1")


@pytest.fixture(scope="session")
def sealing_key(keyring: Keyring) -> SealingKey:
    kid, public_key = keyring.sealing_key("card")
    return SealingKey(kid=kid, public_key=public_key)


@dataclass(frozen=True)
class Keys:
    keyring: Keyring
    producer: Signer
    worker: Signer
    sealing_key: SealingKey


@pytest.fixture(scope="session")
def keys(keyring: Keyring, producer: Signer, worker: Signer, sealing_key: SealingKey) -> Keys:
    return Keys(keyring, producer, worker, sealing_key)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Claims]:
    """A real payment store; tampered requests must never reach it."""
    engine = create_store_engine(f"sqlite:///{tmp_path_factory.mktemp('store') / 'paymq.db'}")
    upgrade(engine)
    claims = Claims(engine, SystemClock(), owner="property-test", lease_ms=60_000)
    yield claims
    claims.close()
    claims.engine.dispose()

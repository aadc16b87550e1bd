"""Integration fixtures: a topology of the test's own on the real broker, real keys, the sandbox
provider over real HTTP, workers running the production consumer in threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from common.amqp.admin import BrokerAdmin
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from paymq_tools.devchain import Anvil, anvil_path
from producer.producer import Producer
from sandbox.client import SandboxControl
from sandbox.server import SandboxThread
from tests.integration.localstripe import LocalStripe
from tests.stores import postgres_engine, sqlite_engine
from workers.consumer import Consumer
from workers.main import build_consumer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread() as running:
        yield running


@pytest.fixture(scope="session")
def control(sandbox: SandboxThread) -> SandboxControl:
    return SandboxControl(sandbox.url)


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """localstripe in a child process of its own, for the session."""
    with LocalStripe(tmp_path_factory.mktemp("localstripe") / "localstripe.log") as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated payment store: the test runs once on SQLite and once on PostgreSQL."""
    factory = sqlite_engine(tmp_path) if request.param == "sqlite" else postgres_engine()
    with factory as created:
        yield created


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    """A fresh anvil node per test (0.2 s to start), mining one block per transaction."""
    if anvil_path() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and anvil is not installed (make install runs npm ci)")
        pytest.skip("anvil is not installed: make install (npm ci)")
    with Anvil(tmp_path / "anvil.log") as node:
        yield node


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    init_keys(
        directory,
        producer_key_id="producer-1",
        worker_key_id="worker-1",
        sealing_key_id="card-seal-1",
    )
    return directory


@pytest.fixture(scope="session")
def keyring(keys_dir: Path) -> Keyring:
    return Keyring.load(keys_dir / TRUSTED_DIR)


@pytest.fixture
def settings(
    amqp_url: str, prefix: str, keys_dir: Path, sandbox: SandboxThread, tmp_path: Path
) -> Settings:
    return Settings(
        _env_file=None,
        amqp_url=amqp_url,
        topology_prefix=prefix,
        keys_dir=keys_dir,
        provider_url=sandbox.url,
        retry_delays_ms=(100, 200, 400),
        max_attempts=3,
        provider_read_timeout_s=1.0,
        publish_timeout_s=10.0,
        connect_timeout_s=5.0,
        reconnect_max_delay_s=1.0,
        shutdown_grace_s=10.0,
        worker_concurrency=8,
        database_url=f"sqlite:///{tmp_path / 'paymq.db'}",
        claim_lease_s=5.0,
        reconcile_schedule_s=(0.5, 1.0, 2.0),
        reconcile_interval_s=0.2,
        worker_reconciles=False,
    )


@pytest.fixture
def topology(settings: Settings, admin: BrokerAdmin) -> Iterator[Settings]:
    """Declares the test's topology, deletes it afterwards; yields the settings."""
    admin.declare(settings.broker.topology())
    yield settings
    with BrokerAdmin(settings.broker.amqp_url) as cleanup:
        cleanup.delete(settings.broker.topology())


@dataclass
class RunningWorker:
    consumer: Consumer
    thread: threading.Thread

    def stop(self, timeout_s: float = 20.0) -> None:
        self.consumer.shutdown()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "worker did not stop"


@pytest.fixture
def start_worker(topology: Settings) -> Iterator[Callable[..., RunningWorker]]:
    """Start the production consumer of a channel in a thread; stopped at teardown."""
    running: list[RunningWorker] = []

    def start(
        channel: str, settings: Settings | None = None, name: str | None = None
    ) -> RunningWorker:
        consumer = build_consumer(settings or topology, channel, name=name)
        thread = threading.Thread(target=consumer.run, name=f"worker-{channel}", daemon=True)
        thread.start()
        worker = RunningWorker(consumer, thread)
        running.append(worker)
        return worker

    yield start
    for worker in running:
        if worker.thread.is_alive():
            worker.stop()


@pytest.fixture
def producer(topology: Settings) -> Iterator[Producer]:
    with Producer.from_settings(topology, name="paymq-test-producer") as running:
        yield running


@pytest.fixture
def results(topology: Settings, keyring: Keyring) -> Iterator[ResultStream]:
    """A private copy of every result event, open before anything is published."""
    with ResultStream(
        topology.broker.amqp_url, topology.broker.topology(), ResultVerifier(keyring)
    ) as stream:
        yield stream

"""Key rotation as docs/protocol.md#rotation gives it, end to end, on running worker processes:
the real broker, the real store (SQLite, then PostgreSQL), `paymq worker` processes started as
an operator starts them, and the CLI's `paymq keys` commands. Payments are published before,
during and after each rotation; every one must succeed once, with nothing dead-lettered and no
verifier restarted (for the worker key, only its signers, one at a time)."""

from __future__ import annotations

import contextlib
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from common.amqp.admin import BrokerAdmin
from common.envelope import HEADER_KEY_ID, OutboundMessage
from common.errors import ConfigurationError
from common.keygen import init_keys
from common.keyring import KeyStatus
from common.models import PaymentRequest
from common.settings import Settings
from common.subscriber import ResultEvent, ResultStream, ResultVerifier
from common.trustedkeys import trusted_keyring
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.helpers import card_draft, cli_env, collect_events, run_cli, wait_until
from tests.integration.observed import Process, running

pytestmark = pytest.mark.integration


@pytest.fixture
def keyed(topology: Settings, store_engine: Engine, tmp_path: Path) -> Settings:
    """The test's topology with a key set of its own and the parametrized store."""
    keys_dir = tmp_path / "keys"
    init_keys(
        keys_dir, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1"
    )
    return topology.replace(
        keys_dir=keys_dir,
        database_url=store_engine.url.render_as_string(hide_password=False),
    )


@contextlib.contextmanager
def worker(settings: Settings, directory: Path, admin: BrokerAdmin) -> Iterator[Process]:
    """`paymq worker card` in a directory of its own (its log), consuming before it is yielded;
    stopped with SIGTERM (it must drain and exit 0) when the block ends."""
    directory.mkdir()
    queue = settings.broker.topology().work_queue("card")
    before = admin.stats(queue).consumers
    with running(settings, directory, "worker", "card") as process:
        wait_until(
            lambda: admin.stats(queue).consumers > before, timeout_s=30, what="a new consumer"
        )
        yield process


def keys_cli(settings: Settings, *args: str) -> str:
    """`paymq keys <args>` as an operator types it, on this key directory."""
    env = cli_env(PAYMQ_KEYS_DIR=str(settings.keys.keys_dir))
    done = run_cli("keys", *args, env=env, cwd=settings.keys.keys_dir.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def trusts(process: Process, key_id: str, role: str, status: str = "active") -> bool:
    """The running process says it trusts the key: its metrics (a scrape makes it look)."""
    return process.scrape()("paymq_trusted_key", key_id=key_id, role=role, status=status) == 1


def said(process: Process, text: str) -> bool:
    return any(text in line["message"] for line in process.lines())


def copy_whole(source: Path, directory: Path) -> None:
    """Copy a trusted entry into a keyring as docs/protocol.md says: beside it, then renamed
    in, so a process reading the directory meanwhile never sees half of it."""
    temporary = directory / f".{source.name}.tmp"
    shutil.copy(source, temporary)
    temporary.rename(directory / source.name)


def publish(producer: Producer, count: int) -> list[PaymentRequest]:
    requests = []
    for _ in range(count):
        request, message = producer.prepare(card_draft())
        producer.publish(message)
        requests.append(request)
    return requests


def signed_now(producer: Producer, count: int) -> list[tuple[PaymentRequest, OutboundMessage]]:
    """Messages signed now and published later: in flight under the key of the moment."""
    return [producer.prepare(card_draft()) for _ in range(count)]


def paid_once(
    events: list[ResultEvent], control: SandboxControl, requests: list[PaymentRequest]
) -> None:
    """Each request got one result, `succeeded`, and moved money once; nothing else came."""
    results = [event.result for event in events]
    assert all(result is not None for result in results), [e.error for e in events]
    paid = sorted(str(r.payment_id) for r in results if r is not None)
    assert paid == sorted(str(r.payment_id) for r in requests)
    assert {r.status.value for r in results if r is not None} == {"succeeded"}
    for request in requests:
        assert len(control.effects(str(request.payment_id))) == 1, request.payment_id


def nothing_left(admin: BrokerAdmin, settings: Settings) -> None:
    topology = settings.broker.topology()
    assert admin.stats(topology.dead_letter_queue).messages == 0, "something was dead-lettered"
    wait_until(
        lambda: admin.stats(topology.work_queue("card")).messages == 0,
        what="the work queue to drain",
    )


def test_a_producer_key_rotated_as_documented_pays_every_payment_once_with_no_dead_letter(
    keyed: Settings, admin: BrokerAdmin, control: SandboxControl, tmp_path: Path
) -> None:
    settings = keyed
    verifier = ResultVerifier(trusted_keyring(settings.keys.keys_dir))
    with (
        ResultStream(settings.broker.amqp_url, settings.broker.topology(), verifier) as stream,
        worker(settings, tmp_path / "worker-a", admin) as first,
        worker(settings, tmp_path / "worker-b", admin) as second,
        Producer.from_settings(settings) as old,
    ):
        pids = (first.popen.pid, second.popen.pid)
        # Given two running workers paying what producer-1 signs
        before = publish(old, 4)
        # 1-2. The new key is generated where every process reads the keyring
        keys_cli(settings, "generate", "--key-id", "producer-2", "--role", "producer")
        during = publish(old, 4)  # the old signer goes on meanwhile
        # 3. Each running worker is confirmed to trust it, from its metrics and its log
        for process in (first, second):
            wait_until(lambda p=process: trusts(p, "producer-2", "producer"), what="trusted")
            assert said(process, "producer-2 producer active")
        in_flight = signed_now(old, 4)  # signed with producer-1, published after its phase-out
        # 4. The signer switches
        switched = settings.replace(producer_key_id="producer-2")
        with Producer.from_settings(switched) as new:
            after = publish(new, 4)
            # 5. The old key is phased out: what it signed still verifies
            keys_cli(settings, "phase-out", "producer-1")
            for process in (first, second):
                wait_until(lambda p=process: trusts(p, "producer-1", "producer", "retiring"))
            for _request, message in in_flight:
                old.publish(message)
            with pytest.raises(ConfigurationError, match="'producer-1' is retiring"):
                Producer.from_settings(settings)  # a signer the switch missed cannot start
            everything = [*before, *during, *(r for r, _ in in_flight), *after]
            paid_once(collect_events(stream, len(everything), timeout_s=60), control, everything)
            nothing_left(admin, settings)
            # 6-7. Once nothing it signed can still arrive, it is retired, then removed
            keys_cli(settings, "retire", "producer-1")
            keys_cli(settings, "remove", "producer-1")
            last = publish(new, 2)
            paid_once(collect_events(stream, len(last), timeout_s=30), control, last)
        # Then no worker was restarted, and nothing was dead-lettered
        assert (first.popen.pid, second.popen.pid) == pids
        assert first.popen.poll() is None
        assert second.popen.poll() is None
        nothing_left(admin, settings)


def test_a_worker_key_rotated_as_documented_keeps_every_result_verified_by_a_running_subscriber(
    keyed: Settings, admin: BrokerAdmin, control: SandboxControl, tmp_path: Path
) -> None:
    settings = keyed
    switched = settings.replace(worker_key_id="worker-2")
    # Given a subscriber on a host of its own (its own copy of the trusted entries), reading
    # its keyring directory again when it changes, open before anything is published
    subscriber_trusted = tmp_path / "subscriber" / "trusted"
    shutil.copytree(settings.keys.keys_dir / "trusted", subscriber_trusted)
    keyrings = trusted_keyring(subscriber_trusted.parent)
    verifier = ResultVerifier(keyrings)
    with (
        ResultStream(settings.broker.amqp_url, settings.broker.topology(), verifier) as stream,
        Producer.from_settings(settings) as producer,
        contextlib.ExitStack() as workers,
    ):
        # and a running worker signing results with worker-1
        old_worker = workers.enter_context(worker(settings, tmp_path / "worker-1", admin))
        kept, kept_message = producer.prepare(card_draft())
        producer.publish(kept_message)
        before = [kept, *publish(producer, 3)]
        before_events = collect_events(stream, len(before), timeout_s=60)
        paid_once(before_events, control, before)
        assert {e.message.headers[HEADER_KEY_ID] for e in before_events} == {"worker-1"}
        # 1. The new worker key is generated where the workers' keys are
        keys_cli(settings, "generate", "--key-id", "worker-2", "--role", "worker")
        # 2. Its trusted entry is copied into the subscriber's keyring, whole
        copy_whole(settings.keys.keys_dir / "trusted" / "worker-2.json", subscriber_trusted)
        # 3. The running worker (it verifies retry states) and the subscriber trust it
        wait_until(lambda: trusts(old_worker, "worker-2", "worker"), what="the worker to trust it")
        wait_until(
            lambda: "worker-2" in {key.key_id for key in keyrings.current().trusted_keys()},
            what="the subscriber to read its keyring again",
        )
        # 4. The signers switch one at a time while payments keep coming: a worker signing
        # with worker-2 starts, then the one signing with worker-1 drains and stops
        during = publish(producer, 3)
        new_worker = workers.enter_context(worker(switched, tmp_path / "worker-2", admin))
        assert said(new_worker, "results signed with key worker-2")
        during += publish(producer, 3)
        old_worker.popen.send_signal(signal.SIGTERM)
        assert old_worker.popen.wait(timeout=30) == 0
        after = publish(producer, 4)
        events = collect_events(stream, len(during) + len(after), timeout_s=60)
        paid_once(events, control, during + after)
        assert {e.message.headers[HEADER_KEY_ID] for e in events} <= {"worker-1", "worker-2"}
        # 5. worker-1 is phased out, in both keyrings
        keys_cli(settings, "phase-out", "worker-1")
        copy_whole(settings.keys.keys_dir / "trusted" / "worker-1.json", subscriber_trusted)
        wait_until(
            lambda: keyrings.current().get("worker-1").status is KeyStatus.RETIRING,
            what="the subscriber to see worker-1 retiring",
        )
        # Then a payment settled under worker-1, published again, has its stored event
        # repeated byte for byte, and the subscriber still verifies it
        producer.publish(kept_message)
        [repeat] = collect_events(stream, 1, timeout_s=30)
        [original] = [e for e in before_events if e.message.message_id == repeat.message.message_id]
        assert repeat.message.body == original.message.body
        assert repeat.message.headers[HEADER_KEY_ID] == "worker-1"
        # and what is paid from now on is signed with worker-2, verified, nothing dead-lettered
        last = publish(producer, 2)
        last_events = collect_events(stream, len(last), timeout_s=30)
        paid_once(last_events, control, last)
        assert {e.message.headers[HEADER_KEY_ID] for e in last_events} == {"worker-2"}
        nothing_left(admin, settings)

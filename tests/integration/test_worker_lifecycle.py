"""A worker's life on a real broker: forced disconnects, a queue deleted under it, graceful
shutdown with payments in flight, a real process stopped by SIGTERM, and duplicate deliveries."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from common.amqp.admin import BrokerAdmin, prepare_topology
from common.errors import ConfigurationError
from common.keygen import init_keys, set_status
from common.keyring import TRUSTED_DIR, Keyring, KeyStatus
from common.models import PaymentRequest
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from paymq_tools.chaos.linkproxy import LinkProxy
from paymq_tools.processes import settings_env
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    card_draft,
    close_connections,
    collect_events,
    collect_results,
    require_rabbitmqctl,
    wait_until,
)

pytestmark = pytest.mark.integration


def _publish(producer: Producer, count: int = 1) -> list[PaymentRequest]:
    requests = []
    for _ in range(count):
        request, message = producer.prepare(card_draft())
        producer.publish(message)
        requests.append(request)
    return requests


def _paid_once(
    results: ResultStream, control: SandboxControl, requests: list[PaymentRequest]
) -> None:
    """Every request got one `succeeded` result and moved money exactly once."""
    got = collect_results(results, len(requests))
    assert sorted(str(r.payment_id) for r in got) == sorted(str(r.payment_id) for r in requests)
    assert {r.status for r in got} == {"succeeded"}
    for request in requests:
        assert len(control.effects(str(request.payment_id))) == 1


def _consuming(admin: BrokerAdmin, queue: str, worker: RunningWorker | None = None) -> None:
    if worker is not None:  # the broker confirmed the consumer (consume-ok), not just counts it
        wait_until(lambda: worker.consumer.consuming, what="consume-ok")
    wait_until(lambda: admin.stats(queue).consumers == 1, what=f"one consumer on {queue}")


def test_worker_reconnects_after_a_forced_close_and_pays_what_comes_next(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    require_rabbitmqctl()
    name = f"paymq-test-worker-{uuid.uuid4().hex[:8]}"
    queue = topology.broker.topology().work_queue("card")
    # Given a consuming worker
    worker = start_worker("card", name=name)
    _consuming(admin, queue)
    # When the broker force-closes its connection (CONNECTION_FORCED, as a restart does)
    assert close_connections(name) == 2  # its publishing and its consuming connection
    # Then payments published afterwards are paid, once each, and acked
    requests = _publish(producer, 2)
    _paid_once(results, control, requests)
    wait_until(lambda: worker.consumer.processed == 2, what="both deliveries acked")
    assert admin.stats(queue).consumers == 1


def test_worker_that_paid_before_a_forced_close_acks_payments_after_it(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    require_rabbitmqctl()
    name = f"paymq-test-worker-{uuid.uuid4().hex[:8]}"
    # (a short grace: with the bug, teardown would wait for the unacked delivery)
    worker = start_worker("card", name=name, settings=topology.replace(shutdown_grace_s=1.0))
    # Given a worker that has paid a payment over its first connection
    _paid_once(results, control, _publish(producer))
    wait_until(lambda: worker.consumer.processed == 1, what="the first delivery acked")
    # When the broker force-closes its connection
    assert close_connections(name) == 2  # its publishing and its consuming connection
    # Then the next payment is paid and its delivery acked, leaving nothing unacked
    _paid_once(results, control, _publish(producer))
    wait_until(lambda: worker.consumer.processed == 2, timeout_s=5, what="the delivery acked")


def test_worker_resumes_consuming_after_its_queue_is_deleted_and_declared_again(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    keyring: Keyring,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    topo = topology.broker.topology()
    queue = topo.work_queue("card")
    # Given a consuming worker
    worker = start_worker("card")
    _consuming(admin, queue, worker)
    # When an operator deletes the topology under it (the broker cancels its consumer) and
    # declares it again
    admin.delete(topo)
    # (the broker tells the consumer; a queue declared again within milliseconds can keep a
    # quorum queue's consumer that was never told, a broker race an operator never meets)
    wait_until(lambda: not worker.consumer.consuming, what="the broker's cancel")
    admin.declare(topo)
    # Then the worker consumes the new queue, once, and pays a payment published to it
    _consuming(admin, queue)
    with ResultStream(topology.broker.amqp_url, topo, ResultVerifier(keyring)) as results:
        _paid_once(results, control, _publish(producer))
    wait_until(lambda: worker.consumer.processed == 1, what="the delivery acked")
    assert admin.stats(queue).consumers == 1


def test_graceful_shutdown_finishes_payments_in_flight_and_requeues_nothing(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    queue = topology.broker.topology().work_queue("card")
    # (a read timeout longer than the provider's latency: these calls are slow, not lost)
    worker = start_worker("card", settings=topology.replace(provider_read_timeout_s=5.0))
    control.set_latency(1500)
    try:
        # Given three payments delivered to a worker, each in a slow provider call
        requests = _publish(producer, 3)
        wait_until(lambda: admin.stats(queue).messages == 0, what="all three delivered")
        # When the worker is told to stop
        worker.stop()
    finally:
        control.set_latency(0)
    # Then it finished all three before stopping: paid once each, acked, nothing requeued
    _paid_once(results, control, requests)
    assert worker.consumer.processed == 3
    stats = admin.stats(queue)
    assert (stats.messages, stats.consumers) == (0, 0)


def thread_policies(pid: int) -> set[int]:
    policies = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            policies.add(os.sched_getscheduler(int(task.name)))
    return policies


def test_worker_process_pays_and_exits_cleanly_on_sigterm(
    topology: Settings,
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
    tmp_path: Path,
) -> None:
    queue = topology.broker.topology().work_queue("card")
    log = tmp_path / "worker.log"
    # Given `paymq worker card` running as an operator would start it
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "paymq", "worker", "card"],
            env=settings_env(topology, dict(os.environ)),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: process.poll() is not None or admin.stats(queue).consumers == 1,
            timeout_s=30,
            what="the worker process to consume",
        )
        assert process.poll() is None, log.read_text()
        # When it has paid a payment
        _paid_once(results, control, _publish(producer))
        # Then every one of its threads ran as a batch process (common/scheduling.py)
        if sys.platform == "linux":
            assert thread_policies(process.pid) == {os.SCHED_BATCH}
        # And when it gets SIGTERM
        process.send_signal(signal.SIGTERM)
        # Then it exits cleanly
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert admin.stats(queue).consumers == 0


def test_a_payment_published_twice_gets_two_results_but_moves_money_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    start_worker("card")
    # Given one signed payment, published twice (as a producer retry after a lost confirm does)
    request, message = producer.prepare(card_draft())
    assert all(outcome.ok for outcome in producer.publish_many([message, message]))
    # Then each delivery gets a result for the payment, and the provider moved money once
    got = collect_results(results, 2)
    assert [r.payment_id for r in got] == [request.payment_id] * 2
    assert [r.status for r in got] == ["succeeded"] * 2
    assert len({r.event_id for r in got}) == 1
    assert len(control.effects(str(request.payment_id))) == 1


def test_a_redelivered_payment_gets_a_byte_identical_result(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
) -> None:
    start_worker("card")
    # Given a payment that was paid and got its result
    _, message = producer.prepare(card_draft())
    producer.publish(message)
    [first] = collect_events(results, 1)
    # When the same message is delivered again
    producer.publish(message)
    [second] = collect_events(results, 1)
    # Then its result is a byte-identical copy, so subscribers can deduplicate it
    assert second.message.message_id == first.message.message_id
    assert second.message.body == first.message.body
    assert second.message.headers == first.message.headers


def test_a_worker_whose_store_is_locked_takes_no_deliveries_until_it_answers_again(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    # Given a worker whose store calls give up after a second
    settings = topology.replace(database_timeout_s=1.0)
    queue = settings.broker.topology().work_queue("card")
    worker = start_worker("card", settings)
    _consuming(admin, queue, worker)
    database = settings.store.database_url.get_secret_value().removeprefix("sqlite:///")
    # When another process holds the store's write lock while a payment arrives
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        [request] = _publish(producer)
        # Then the worker stops taking deliveries instead of hoarding them
        wait_until(lambda: admin.stats(queue).consumers == 0, what="the consumer cancelled")
        assert control.effects(str(request.payment_id)) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # And once the store answers again it consumes again, and the payment is paid once
    wait_until(lambda: admin.stats(queue).consumers == 1, what="the consumer back")
    _paid_once(results, control, [request])


def test_a_worker_gives_up_a_silent_link_by_itself_and_pays_once_it_heals(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    # Given a worker that reaches the broker through a link that can go silent (1 s heartbeat)
    broker = urlsplit(topology.broker.amqp_url)
    with LinkProxy(broker.hostname or "127.0.0.1", broker.port or 5672, name="broker") as link:
        settings = topology.replace(amqp_url=link.route(topology.broker.amqp_url), heartbeat_s=1)
        queue = settings.broker.topology().work_queue("card")
        worker = start_worker("card", settings)
        _consuming(admin, queue, worker)
        # When the link is blackholed (nothing arrives, nothing closes) as a payment comes
        link.blackhole()
        [request] = _publish(producer)
        # Then the worker tears the silent connection down by itself: no close can reach it
        wait_until(lambda: not worker.consumer.consuming, what="the silent link given up")
        # And once the link heals it consumes again and the payment is paid once
        link.pass_through()
        _consuming(admin, queue, worker)
        _paid_once(results, control, [request])


def test_a_work_queue_kept_with_another_delivery_limit_is_a_configuration_error_saying_what_to_do(
    topology: Settings,
) -> None:
    # Given a topology an earlier version declared with another delivery limit
    upgraded = topology.replace(delivery_limit=topology.broker.delivery_limit + 90)
    # When a worker of this version declares it at start-up
    with pytest.raises(ConfigurationError) as raised:
        prepare_topology(upgraded.broker.amqp_url, upgraded.broker.topology())
    # Then it fails with what differs, in which queue, and the way out; not a pika traceback
    message = str(raised.value)
    assert "x-delivery-limit" in message
    assert f"{topology.broker.topology_prefix}.work." in message
    assert "PAYMQ_DELIVERY_LIMIT" in message
    assert "rabbitmqctl delete_queue" in message


def test_a_key_retired_while_a_worker_runs_is_refused_within_seconds(
    topology: Settings, start_worker: Callable[..., RunningWorker], tmp_path: Path
) -> None:
    # Given a running worker and a producer whose key it trusts (keys of this test's own)
    keys_dir = tmp_path / "keys"
    init_keys(
        keys_dir, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1"
    )
    settings = topology.replace(keys_dir=keys_dir)
    start_worker("card", settings)
    verifier = ResultVerifier(Keyring.load(keys_dir / TRUSTED_DIR))
    with (
        ResultStream(settings.broker.amqp_url, settings.broker.topology(), verifier) as results,
        Producer.from_settings(settings) as producer,
    ):
        _, before = producer.prepare(card_draft())
        producer.publish(before)
        [paid] = collect_results(results, 1)
        assert paid.status == "succeeded"
        # When the key is retired on disk (as `paymq keys retire` does), no restart
        set_status(keys_dir, "producer-1", KeyStatus.RETIRED)
        # Then within seconds its signatures are refused
        deadline = time.monotonic() + 10
        refused = None
        while refused is None and time.monotonic() < deadline:
            _, after = producer.prepare(card_draft())
            producer.publish(after)
            [result] = collect_results(results, 1)
            if result.status == "rejected":
                refused = result
            time.sleep(0.25)
        assert refused is not None, "the retired key was still trusted 10 s later"
        assert refused.code == "key_not_allowed"

"""The notifications queue stops growing when nobody consumes it: past its length limit the
oldest result event is dropped, and no payment is held back. A queue declared by an earlier
paymq, without the limit, is kept (RabbitMQ cannot change its arguments) with a warning that
says how to bound it in place, and the workers start over it as before."""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.amqp.admin import BrokerAdmin, prepare_topology
from common.envelope import OutboundMessage
from common.keyring import Keyring
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from common.topology import BindingSpec, QueueSpec
from producer.producer import Producer
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    card_draft,
    cli_env,
    collect_events,
    rabbitmqctl,
    require_rabbitmqctl,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.integration

LIMIT = 3


@pytest.fixture
def limited(settings: Settings, admin: BrokerAdmin) -> Iterator[Settings]:
    """A topology of its own whose notifications queue holds 3 events, deleted afterwards."""
    limited = settings.replace(
        topology_prefix=f"{settings.broker.topology_prefix}-n", notifications_max_length=LIMIT
    )
    yield limited
    admin.delete(limited.broker.topology())


def test_a_notifications_queue_nobody_consumes_keeps_the_newest_events_and_holds_back_no_payment(
    limited: Settings,
    admin: BrokerAdmin,
    keyring: Keyring,
    start_worker: Callable[..., RunningWorker],
) -> None:
    # Given a notifications queue of 3 events that nobody consumes, and a worker
    topology = limited.broker.topology()
    assert admin.declare(topology) == []
    start_worker("card", limited)
    with ResultStream(limited.broker.amqp_url, topology, ResultVerifier(keyring)) as results:
        # When twice as many payments as it holds are paid
        with Producer.from_settings(limited, name="paymq-test-producer") as producer:
            producer.publish_many([producer.prepare(card_draft())[1] for _ in range(2 * LIMIT)])
        events = collect_events(results, 2 * LIMIT)
    # Then every payment got its result once, none went back to its queue or to the dead letters
    paid = [e.result for e in events if e.result and e.result.status == "succeeded"]
    assert len({result.payment_id for result in paid}) == 2 * LIMIT
    assert admin.stats(topology.work_queue("card")).messages == 0
    assert admin.stats(topology.dead_letter_queue).messages == 0
    # and the notifications queue holds the 3 newest events, the oldest dropped
    kept = admin.drain(topology.notifications_queue)
    assert [m.message_id for m in kept] == [e.message.message_id for e in events[-LIMIT:]]


@pytest.fixture
def operator_policies() -> Iterator[list[str]]:
    """Names of the operator policies a test sets, cleared afterwards."""
    require_rabbitmqctl()
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(
            [str(rabbitmqctl()), "-q", "clear_operator_policy", name], check=False, timeout=60
        )


def test_an_unbounded_notifications_queue_from_an_earlier_paymq_is_kept_and_bounded_in_place(
    limited: Settings,
    admin: BrokerAdmin,
    keys_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    operator_policies: list[str],
    start_worker: Callable[..., RunningWorker],
) -> None:
    # Given the notifications queue as an earlier paymq declared it: quorum, no limit
    topology = limited.broker.topology()
    queue = topology.notifications_queue
    admin.declare_queue(
        QueueSpec(queue, {"x-queue-type": "quorum"}), BindingSpec(queue, "amq.topic", queue)
    )
    # When a worker starts (it declares the topology first)
    with caplog.at_level(logging.WARNING, logger="paymq.amqp"):
        prepare_topology(limited.broker.amqp_url, topology)
    # Then the queue is kept, with a warning that says how to bound it
    [warning] = [r.getMessage() for r in caplog.records if r.name == "paymq.amqp"]
    assert "kept as it is" in warning
    assert "inequivalent arg 'x-max-length'" in warning
    # and payments flow as before, their results landing in the queue
    start_worker("card", limited)
    with Producer.from_settings(limited, name="paymq-test-producer") as producer:
        producer.publish(producer.prepare(card_draft())[1])
    wait_until(lambda: admin.stats(queue).messages == 1, what="the result in the old queue")
    # and `paymq topology declare` says the same, and succeeds
    env = cli_env(
        PAYMQ_AMQP_URL=limited.broker.amqp_url,
        PAYMQ_TOPOLOGY_PREFIX=limited.broker.topology_prefix,
        PAYMQ_NOTIFICATIONS_MAX_LENGTH=str(LIMIT),
        PAYMQ_RETRY_DELAYS_MS=json.dumps(limited.broker.retry_delays_ms),
        PAYMQ_KEYS_DIR=str(keys_dir),
    )
    declared = run_cli("topology", "declare", env=env, cwd=tmp_path)
    assert declared.returncode == 0, declared.stdout + declared.stderr
    assert "warning:" in declared.stderr
    assert "set_operator_policy" in declared.stderr
    # When the operator runs the command the warning gives
    given = shlex.split(warning[warning.index("rabbitmqctl ") : warning.index(" (docs/")])
    operator_policies.append(given[2])
    subprocess.run([str(rabbitmqctl()), *given[1:]], check=True, capture_output=True, timeout=60)
    # Then the old queue holds no more than the limit, the newest events
    for _ in range(2 * LIMIT):
        admin.publish(_event(limited))
    wait_until(lambda: admin.stats(queue).messages == LIMIT, what=f"{LIMIT} events kept")


def _event(settings: Settings) -> OutboundMessage:
    """A message on the results exchange (its content does not matter to the queue)."""
    return OutboundMessage(
        exchange=settings.broker.topology().results_exchange,
        routing_key="card.succeeded",
        body=b"{}",
        message_id=str(uuid.uuid4()),
        message_type="test",
    )

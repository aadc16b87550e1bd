"""One broker user per role, as `paymq topology users` defines them, on the real broker: each
process does its duty with its own user, and the broker refuses it anything else.

The users live in a virtual host of this module's own, created from the command's definitions
with `rabbitmqctl import_definitions` (as docs/docker.md tells operators) and deleted with its
users afterwards.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pika.exceptions
import pytest

from common.amqp.admin import BrokerAdmin, prepare_topology
from common.envelope import OutboundMessage
from common.errors import BrokerUnavailable, ConfigurationError
from common.keyring import Keyring
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from common.topology import Topology
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.helpers import (
    card_draft,
    cli_env,
    collect_results,
    rabbitmqctl,
    require_rabbitmqctl,
    run_cli,
    wait_until,
)
from webhooks.service import declare_queue
from workers.main import build_consumer

pytestmark = pytest.mark.integration

#: The retry tiers of the integration tests' settings: the users' permissions name them.
RETRY_DELAYS_MS = (100, 200, 400)


@dataclass(frozen=True)
class BrokerUsers:
    """The module's virtual host, its topology prefix, and a URL per role."""

    prefix: str
    vhost: str
    broker_url: str
    passwords_dir: Path

    @property
    def topology(self) -> Topology:
        return Topology(prefix=self.prefix, retry_delays_ms=RETRY_DELAYS_MS)

    def url(self, role: str) -> str:
        user = f"{self.prefix}-{role}"
        password = (self.passwords_dir / user).read_text(encoding="utf-8").strip()
        parts = urlsplit(self.broker_url)
        host = parts.netloc.rpartition("@")[2]
        vhost = "/" + quote(self.vhost, safe="")
        return urlunsplit((parts.scheme, f"{user}:{password}@{host}", vhost, "", ""))


def _ctl(*args: str, given: str | None = None) -> subprocess.CompletedProcess[str]:
    ctl = rabbitmqctl()
    assert ctl is not None
    return subprocess.run(
        [ctl, "-q", *args], input=given, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def users(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerUsers]:
    require_rabbitmqctl()
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    work_dir = tmp_path_factory.mktemp("broker-users")
    passwords_dir = work_dir / "passwords"
    env = cli_env(
        PAYMQ_AMQP_URL=amqp_url,
        PAYMQ_TOPOLOGY_PREFIX=prefix,
        PAYMQ_RETRY_DELAYS_MS=json.dumps(RETRY_DELAYS_MS),
    )
    # The operator's steps: define the users, import them, declare the topology as the admin.
    made = run_cli(
        "topology", "users", "--passwords-dir", str(passwords_dir), "--vhost", f"{prefix}-vhost",
        env=env, cwd=work_dir,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    names = [user["name"] for user in json.loads(made.stdout)["users"]]
    created = BrokerUsers(prefix, f"{prefix}-vhost", amqp_url, passwords_dir)
    try:
        # From standard input: rabbitmqctl reads a file as the broker's user, who may not
        # enter this test's temporary directory.
        imported = _ctl("import_definitions", "--format", "json", given=made.stdout)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        declared = run_cli(
            "topology", "declare", env={**env, "PAYMQ_AMQP_URL": created.url("admin")}, cwd=work_dir
        )
        assert declared.returncode == 0, declared.stderr
        yield created
    finally:
        # Whatever was created; a step that never ran leaves nothing to delete.
        _ctl("delete_vhost", created.vhost)
        for name in names:
            _ctl("delete_user", name)


def _as(users: BrokerUsers, settings: Settings, role: str) -> Settings:
    """The integration settings, as the process of `role` runs them in production."""
    return settings.replace(
        amqp_url=users.url(role),
        topology_prefix=users.prefix,
        retry_delays_ms=RETRY_DELAYS_MS,
        declare_topology=False,
    )


def _request(topology: Topology) -> OutboundMessage:
    return OutboundMessage(
        exchange=topology.requests_exchange,
        routing_key="card",
        body=b"{}",
        message_id=str(uuid.uuid4()),
        message_type="payment.request",
    )


def _result(topology: Topology) -> OutboundMessage:
    return OutboundMessage(
        exchange=topology.results_exchange,
        routing_key=Topology.result_routing_key("card", "succeeded"),
        body=b"{}",
        message_id=str(uuid.uuid4()),
        message_type="payment.result",
    )


# --- each process does its duty on its own user ---------------------------------------------


def test_each_process_does_its_duty_on_its_own_broker_user(
    users: BrokerUsers, settings: Settings, keyring: Keyring, control: SandboxControl
) -> None:
    topology = users.topology
    verifier = ResultVerifier(keyring)
    # Given a subscriber's private queue, and the webhooks process's queue, each on its user
    with ResultStream(users.url("subscriber"), topology, verifier) as private:
        declare_queue(_as(users, settings, "webhooks"))
        # and a card worker on its user, which checks the topology instead of declaring it
        worker_settings = _as(users, settings, "worker-card")
        prepare_topology(worker_settings.broker.amqp_url, topology, declare=False)
        consumer = build_consumer(worker_settings, "card")
        thread = threading.Thread(target=consumer.run, name="worker-card", daemon=True)
        thread.start()
        try:
            # When a producer publishes a payment on its user
            with Producer.from_settings(_as(users, settings, "producer")) as producer:
                request, message = producer.prepare(card_draft())
                producer.publish(message)
            # Then the worker paid it once and published its result, which the subscriber's
            # private queue received
            [result] = collect_results(private, 1)
        finally:
            consumer.shutdown()
            thread.join(20)
    assert not thread.is_alive(), "the worker did not stop"
    assert (result.payment_id, result.status) == (request.payment_id, "succeeded")
    assert len(control.effects(str(request.payment_id))) == 1
    # and so did the durable notifications queue, read as the subscriber
    with ResultStream(users.url("subscriber"), topology, verifier, durable=True) as durable:
        [notified] = collect_results(durable, 1)
    assert notified.event_id == result.event_id
    # and the webhooks queue, read as the webhooks process
    with BrokerAdmin(users.url("webhooks")) as webhooks:
        queued = wait_until(
            lambda: webhooks.get(topology.webhooks_queue), what="the event in the webhooks queue"
        )
    assert queued.message_id == str(result.event_id)


def test_a_reconciler_publishes_results_and_every_role_reads_queue_depths(
    users: BrokerUsers,
) -> None:
    topology = users.topology
    with BrokerAdmin(users.url("admin")) as admin:
        admin.purge(topology.notifications_queue)
    # When the reconciler's user publishes a result event, it is confirmed and routed
    with BrokerAdmin(users.url("reconciler")) as reconciler:
        reconciler.publish(_result(topology))
    # Then every role reads every queue's depth (a passive declare, as the metrics do) without
    # a permission for it, and sees the event waiting for subscribers
    for role in ("admin", "api", "producer", "worker-card", "reconciler", "webhooks"):
        with BrokerAdmin(users.url(role)) as admin:
            depths = {queue.name: admin.stats(queue.name).messages for queue in topology.queues()}
        assert depths[topology.notifications_queue] == 1, role
    with BrokerAdmin(users.url("admin")) as admin:
        assert admin.purge(topology.notifications_queue) == 1


def test_a_process_that_does_not_declare_names_the_command_when_the_topology_is_missing(
    users: BrokerUsers,
) -> None:
    # Given a topology nobody declared in the virtual host
    missing = Topology(prefix=f"{users.prefix}-other", retry_delays_ms=RETRY_DELAYS_MS)
    # When a worker that does not declare starts on it
    with pytest.raises(ConfigurationError) as raised:
        prepare_topology(users.url("worker-card"), missing, declare=False)
    # Then it stops naming what is missing and how to declare it
    assert f"exchange {missing.requests_exchange} does not exist" in str(raised.value)
    assert "paymq topology declare" in str(raised.value)


# --- and is refused anything else ------------------------------------------------------------

Refused = Callable[[BrokerAdmin, Topology], object]

REFUSALS: dict[str, tuple[str, Refused]] = {
    "the API consumes the card work queue": (
        "api",
        lambda admin, t: admin.get(t.work_queue("card")),
    ),
    "a producer deletes the card work queue": (
        "producer",
        lambda admin, t: admin.delete_queue(t.work_queue("card")),
    ),
    "a subscriber publishes a payment request": (
        "subscriber",
        lambda admin, t: admin.publish(_request(t)),
    ),
    "the card worker consumes the digital-currency work queue": (
        "worker-card",
        lambda admin, t: admin.get(t.work_queue("digital_currency")),
    ),
    "the card worker publishes to the notifications queue directly": (
        "worker-card",
        lambda admin, t: admin.publish(
            OutboundMessage("", t.notifications_queue, b"{}", str(uuid.uuid4()), "x")
        ),
    ),
    "the webhooks process publishes a payment request": (
        "webhooks",
        lambda admin, t: admin.publish(_request(t)),
    ),
    "the reconciler consumes the notifications queue": (
        "reconciler",
        lambda admin, t: admin.get(t.notifications_queue),
    ),
    "a subscriber consumes the dead-letter queue": (
        "subscriber",
        lambda admin, t: admin.get(t.dead_letter_queue),
    ),
}


@pytest.mark.parametrize(("role", "act"), REFUSALS.values(), ids=REFUSALS.keys())
def test_the_broker_refuses_a_role_anything_outside_its_duty(
    users: BrokerUsers, role: str, act: Refused
) -> None:
    topology = users.topology
    with BrokerAdmin(users.url("admin")) as admin:
        before = {queue.name: admin.stats(queue.name).messages for queue in topology.queues()}
    # When the role's user tries it
    with BrokerAdmin(users.url(role)) as admin, pytest.raises(BrokerUnavailable) as raised:
        act(admin, topology)
    # Then the broker refused it: ACCESS_REFUSED, for this user
    refusal = raised.value.__cause__
    assert isinstance(refusal, pika.exceptions.ChannelClosedByBroker), repr(refusal)
    assert refusal.reply_code == 403
    assert refusal.reply_text.startswith("ACCESS_REFUSED")
    assert f"user '{users.prefix}-{role}'" in refusal.reply_text
    # and nothing changed: every queue is still there, with as many messages
    with BrokerAdmin(users.url("admin")) as admin:
        after = {queue.name: admin.stats(queue.name).messages for queue in topology.queues()}
    assert after == before


def test_a_worker_whose_user_may_not_declare_says_how_to_start_it(
    users: BrokerUsers,
) -> None:
    # When a worker starts on its user with declaring left on (the default)
    with pytest.raises(ConfigurationError) as raised:
        prepare_topology(users.url("worker-card"), users.topology, declare=True)
    # Then the broker's refusal stops it with the way out, not a reconnection loop
    refusal = raised.value.__cause__
    assert isinstance(refusal, pika.exceptions.ChannelClosedByBroker)
    assert (refusal.reply_code, refusal.reply_text[:14]) == (403, "ACCESS_REFUSED")
    assert "PAYMQ_DECLARE_TOPOLOGY=false" in str(raised.value)

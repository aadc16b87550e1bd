"""Several broker addresses (a cluster's nodes) on the real broker.

Two link proxies in front of the one local RabbitMQ stand for two nodes: a proxy that resets
every connection, old and new, is a node that died. The cluster itself (three real nodes, one
killed) is `paymq chaos`'s cluster mode (tests/faults/test_cluster.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from common.amqp.admin import BrokerAdmin
from common.errors import BrokerUnavailable
from common.keyring import Keyring
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from paymq_tools.chaos.linkproxy import LinkProxy
from paymq_tools.processes import free_port
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import card_draft, cli_env, collect_results, run_cli, wait_until

pytestmark = pytest.mark.integration


def _dead(url: str) -> str:
    """`url` on a port where nothing listens: a node that is down."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{user}@127.0.0.1:{free_port()}").geturl()


@pytest.fixture
def two_nodes(topology: Settings) -> Iterator[tuple[LinkProxy, LinkProxy]]:
    broker = urlsplit(topology.broker.amqp_url)
    host, port = broker.hostname or "127.0.0.1", broker.port or 5672
    with LinkProxy(host, port, name="node-a") as a, LinkProxy(host, port, name="node-b") as b:
        yield a, b


def _pay(settings: Settings, results: ResultStream, control: SandboxControl, count: int) -> None:
    with Producer.from_settings(settings, name="paymq-test-nodes") as producer:
        requests = []
        for _ in range(count):
            request, message = producer.prepare(card_draft())
            producer.publish(message)
            requests.append(request)
    got = collect_results(results, count)
    assert sorted(str(r.payment_id) for r in got) == sorted(str(r.payment_id) for r in requests)
    assert {r.status for r in got} == {"succeeded"}
    for request in requests:
        assert len(control.effects(str(request.payment_id))) == 1


@pytest.mark.parametrize("dead_at", [0, 1, 2])
def test_one_dead_node_of_three_leaves_every_process_working(
    dead_at: int,
    topology: Settings,
    two_nodes: tuple[LinkProxy, LinkProxy],
    start_worker: Callable[..., RunningWorker],
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given three addresses, one of them a node that is down, wherever it is in the list
    a, b = two_nodes
    nodes = [a.route(topology.broker.amqp_url), b.route(topology.broker.amqp_url)]
    nodes.insert(dead_at, _dead(topology.broker.amqp_url))
    settings = topology.replace(amqp_url=",".join(nodes))
    # When a worker, a producer and an admin connection are given the list
    worker = start_worker("card", settings)
    wait_until(lambda: worker.consumer.consuming, what="consume-ok")
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        assert admin.stats(settings.broker.topology().work_queue("card")).consumers == 1
    # Then payments flow and are paid once
    _pay(settings, results, control, count=5)


def test_a_worker_whose_node_dies_moves_to_another_and_pays(
    topology: Settings,
    two_nodes: tuple[LinkProxy, LinkProxy],
    start_worker: Callable[..., RunningWorker],
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given a worker given two nodes, connected to one of them
    a, b = two_nodes
    settings = topology.replace(
        amqp_url=f"{a.route(topology.broker.amqp_url)},{b.route(topology.broker.amqp_url)}"
    )
    worker = start_worker("card", settings)
    wait_until(lambda: worker.consumer.consuming, what="consume-ok")
    [used] = [node for node in (a, b) if node.stats().accepted > 0]
    other = b if used is a else a
    # When its node dies: every connection reset, and none accepted again
    used.reset_all()
    # Then it connects to the other node and pays what comes next, once
    wait_until(lambda: other.stats().accepted >= 2, what="both connections on the other node")
    wait_until(lambda: worker.consumer.consuming, what="consume-ok on the other node")
    _pay(settings, results, control, count=5)


def test_when_no_node_answers_every_entry_point_says_so(topology: Settings, tmp_path: Path) -> None:
    # Given three addresses, none of which answers
    nodes = ",".join(_dead(topology.broker.amqp_url) for _ in range(3))
    # When an admin connection or a producer is opened on them
    with pytest.raises(BrokerUnavailable, match="cannot reach any of the 3 RabbitMQ nodes"):
        BrokerAdmin(nodes, connect_timeout_s=2.0)
    settings = topology.replace(amqp_url=nodes, connect_timeout_s=2.0)
    with (
        pytest.raises(BrokerUnavailable, match="cannot reach any of the 3 RabbitMQ nodes"),
        Producer.from_settings(settings),
    ):
        pass
    # And a command: exit status 2, the nodes named without their passwords
    completed = run_cli(
        "topology", "declare", env=cli_env(PAYMQ_AMQP_URL=nodes), cwd=tmp_path, timeout_s=60
    )
    assert completed.returncode == 2, completed.stderr
    said = " ".join(completed.stderr.split())
    assert "any of the 3" in said
    assert "guest:guest" not in said


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("amqp://guest:secret@127.0.0.1:5672/%2F,,amqp://b/", "address 2 of 3 is empty"),
        ("amqp://a/,http://guest:secret@b/", "address 2 of 2 (http://guest:***@b/)"),
        ("amqp://guest:secret@a:99999/", "Port out of range"),
        ("amqp://a/,amqp://a/", "listed twice"),
    ],
)
def test_a_bad_address_list_is_refused_naming_the_bad_url(
    address: str, said: str, tmp_path: Path
) -> None:
    # When a command is given a list with one bad URL
    completed = run_cli("worker", "card", env=cli_env(PAYMQ_AMQP_URL=address), cwd=tmp_path)
    # Then it exits at once, saying which one and why, without the password
    assert completed.returncode == 2
    message = " ".join(completed.stderr.split())
    assert "PAYMQ_AMQP_URL" in message
    assert said in message
    assert "secret" not in message


def test_a_result_stream_whose_node_dies_reconnects_to_another_and_receives_what_follows(
    topology: Settings,
    two_nodes: tuple[LinkProxy, LinkProxy],
    start_worker: Callable[..., RunningWorker],
    keyring: Keyring,
) -> None:
    # Given a subscriber given two nodes, a worker on the broker directly
    a, b = two_nodes
    address = f"{a.route(topology.broker.amqp_url)},{b.route(topology.broker.amqp_url)}"
    worker = start_worker("card")
    wait_until(lambda: worker.consumer.consuming, what="consume-ok")
    with (
        ResultStream(address, topology.broker.topology(), ResultVerifier(keyring)) as stream,
        Producer.from_settings(topology, name="paymq-test-nodes") as producer,
    ):
        [used] = [node for node in (a, b) if node.stats().accepted > 0]
        # When the subscriber's node dies
        used.reset_all()
        # Then the stream opens a new connection on the other node, and receives what follows
        request, message = producer.prepare(card_draft())
        published, received = False, None
        deadline = time.monotonic() + 30
        for event in stream.events(inactivity_timeout_s=0.2):
            assert time.monotonic() < deadline, "no result after the reconnection"
            if stream.reconnects and not published:
                producer.publish(message)
                published = True
            if event is not None and event.result is not None:
                received = event.result
                break
        assert stream.reconnects == 1
        assert received is not None
        assert received.payment_id == request.payment_id


def test_a_producer_whose_node_dies_publishes_on_another(
    topology: Settings,
    two_nodes: tuple[LinkProxy, LinkProxy],
    start_worker: Callable[..., RunningWorker],
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given a producer given two nodes, connected to one of them, and a worker
    a, b = two_nodes
    settings = topology.replace(
        amqp_url=f"{a.route(topology.broker.amqp_url)},{b.route(topology.broker.amqp_url)}"
    )
    worker = start_worker("card")
    wait_until(lambda: worker.consumer.consuming, what="consume-ok")
    with Producer.from_settings(settings, name="paymq-test-nodes") as producer:
        [used] = [node for node in (a, b) if node.stats().accepted > 0]
        other = b if used is a else a
        # When its node dies, and payments are published straight after
        used.reset_all()
        requests = []
        for _ in range(5):
            request, message = producer.prepare(card_draft())
            producer.publish(message)  # returns once the broker confirmed it
            requests.append(request)
        # Then they were confirmed through the other node, and are paid once
        assert other.stats().accepted >= 1
    got = collect_results(results, len(requests))
    assert sorted(str(r.payment_id) for r in got) == sorted(str(r.payment_id) for r in requests)
    for request in requests:
        assert len(control.effects(str(request.payment_id))) == 1

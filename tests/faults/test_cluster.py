"""A private cluster of three RabbitMQ nodes: it forms, replicates every queue of a topology
on all three, and survives the faults the cluster scenarios make (a node killed, a node cut
off, leaders moved); then the node-kill scenario at CI size, with the store on PostgreSQL.

Skips without rabbitmq-server (or PostgreSQL for the scenario), except when CI is set, where it
fails. Size of the scenario: `PAYMQ_CHAOS_PAYMENTS` (default 200).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from common.amqp.admin import BrokerAdmin
from common.topology import Topology
from paymq_tools.broker import broker_answers
from paymq_tools.chaos.cluster import PrivateCluster
from paymq_tools.chaos.databases import DatabaseSetupFailed, create_database, drop_database
from paymq_tools.chaos.nodectl import rabbitmq_installed
from paymq_tools.chaos.outcome import row
from paymq_tools.chaos.postgres import postgres_installed
from paymq_tools.chaos.runner import RunOptions, run_scenario
from paymq_tools.chaos.scenarios import by_name
from tests.integration.helpers import cli_env, run_cli

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CI_PAYMENTS = int(os.environ.get("PAYMQ_CHAOS_PAYMENTS", "200"))
PAUSE_TIMEOUT_S = 30.0
console = Console(stderr=True, highlight=False)


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {what}", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    if not rabbitmq_installed():
        _missing("rabbitmq-server is not installed")
    with PrivateCluster(say=console.print, management=True) as started:
        yield started


@pytest.fixture
def topology(cluster: PrivateCluster) -> Iterator[Topology]:
    declared = Topology(prefix=f"cluster-{uuid.uuid4().hex[:8]}")
    with BrokerAdmin(cluster.url) as admin:
        admin.declare(declared)
    yield declared
    with BrokerAdmin(cluster.url) as admin:
        admin.delete(declared)


def test_every_queue_of_a_declared_topology_has_three_members_online(
    cluster: PrivateCluster, topology: Topology
) -> None:
    # Given a topology declared through the list of the three nodes' URLs
    # When the cluster is asked about its queues
    queues = cluster.queue_members(topology.prefix)

    # Then every queue is a quorum queue with a leader and all three nodes as members, online
    everyone = tuple(sorted(node.node for node in cluster.nodes))
    assert len(queues) >= 5
    for queue in queues:
        assert queue.type == "quorum"
        assert queue.members == everyone
        assert queue.online == everyone
        assert queue.leader in everyone


def test_a_killed_node_leaves_every_queue_a_leader_and_rejoins_when_started(
    cluster: PrivateCluster, topology: Topology
) -> None:
    # Given the node leading the work queue
    work_queue = topology.work_queue("card")
    [queue] = [q for q in cluster.queue_members(topology.prefix) if q.name == work_queue]
    victim = cluster.node_named(queue.leader)

    # When it is SIGKILLed
    cluster.kill(victim)

    # Then every queue has a leader among the other two, and it is offline everywhere
    deadline = time.monotonic() + PAUSE_TIMEOUT_S
    while time.monotonic() < deadline:
        queues = cluster.queue_members(topology.prefix)
        if all(q.leader and q.leader != victim.node for q in queues):
            break
        time.sleep(0.2)
    assert all(victim.node not in q.online for q in queues)
    assert all(q.leader and q.leader != victim.node for q in queues)
    # and once started again, it is back in every queue
    cluster.start_node(victim)
    cluster.await_replicated(topology.prefix)


def test_topology_status_shows_each_queues_members_and_a_killed_node_offline(
    cluster: PrivateCluster, topology: Topology, tmp_path: Path
) -> None:
    # Given a topology replicated on the three nodes, and paymq given the three addresses
    env = cli_env(
        PAYMQ_AMQP_URL=cluster.url,
        PAYMQ_MANAGEMENT_URL=str(cluster.management_url),
        PAYMQ_TOPOLOGY_PREFIX=topology.prefix,
    )
    # When an operator asks for the topology's status
    shown = run_cli("topology", "status", env=env, cwd=tmp_path)
    # Then every queue shows a leader and its three members online
    assert shown.returncode == 0, shown.stderr
    assert "cluster: 3 nodes, 3 running" in shown.stdout
    rows = _status_rows(shown.stdout, topology)
    assert len(rows) == len(topology.queues())
    assert all(row.split()[-2:] == ["3/3", "ok"] for row in rows), shown.stdout

    # When a node is killed
    victim = cluster.nodes[1]
    cluster.kill(victim)
    try:
        # Then the status says it is down and every queue has a member offline, yet serves
        deadline = time.monotonic() + PAUSE_TIMEOUT_S
        while time.monotonic() < deadline:
            shown = run_cli("topology", "status", env=env, cwd=tmp_path)
            if all("1 of 3 members offline" in r for r in _status_rows(shown.stdout, topology)):
                break
            time.sleep(1.0)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert f"down: {victim.node}" in shown.stdout
        for row in _status_rows(shown.stdout, topology):
            assert row.split()[2] == "2/3"
            assert "1 of 3 members offline" in row
    finally:
        cluster.start_node(victim)
        cluster.await_replicated(topology.prefix)


def _status_rows(output: str, topology: Topology) -> list[str]:
    return [line.rstrip() for line in output.splitlines() if line.startswith(f"{topology.prefix}.")]


def test_a_cut_off_node_stops_serving_and_serves_again_once_healed(
    cluster: PrivateCluster, topology: Topology
) -> None:
    # Given a node of the cluster
    minority = cluster.nodes[2]

    # When it is cut off from the other two at the Erlang distribution level
    cluster.partition(minority)
    try:
        # Then it pauses (pause_minority): its AMQP listener closes, clients go elsewhere
        deadline = time.monotonic() + PAUSE_TIMEOUT_S
        while broker_answers(minority.url, timeout_s=1.0) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not broker_answers(minority.url, timeout_s=1.0)
        assert all(minority.node not in q.online for q in cluster.queue_members(topology.prefix))
    finally:
        cluster.heal(minority)

    # and once healed it serves again, a member of every queue (its listener opens once its
    # rabbit application is back, a moment after the queues have their members again)
    cluster.await_replicated(topology.prefix)
    deadline = time.monotonic() + PAUSE_TIMEOUT_S
    while not broker_answers(minority.url, timeout_s=1.0) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert broker_answers(minority.url)


def test_leaders_move_to_the_node_asked_for(cluster: PrivateCluster, topology: Topology) -> None:
    # Given each queue's leader
    before = {q.name: q.leader for q in cluster.queue_members(topology.prefix)}
    target = {
        name: next(n for n in cluster.nodes if n.node != leader) for name, leader in before.items()
    }

    # When each is moved to another node
    moved = cluster.transfer_leaders(target)

    # Then every queue is led from there
    after = {q.name: q.leader for q in cluster.queue_members(topology.prefix)}
    assert moved == len(before)
    assert after == {name: node.node for name, node in target.items()}


def test_node_kill_accounts_for_every_payment(cluster: PrivateCluster) -> None:
    # Given real workers on the cluster, the store on PostgreSQL, and the node most workers
    # use SIGKILLed mid-run and started again 30 s later
    options = RunOptions(payments=CI_PAYMENTS, postgres_admin_url=_postgres_admin_url())

    # When CI_PAYMENTS payments go through
    outcome = run_scenario(by_name(["node-kill"])[0], cluster, options, console)

    # Then the checker accounts for every one of them, and the kill happened
    figures = row(outcome)
    console.print_json(data=figures)
    assert outcome.violations() == [], json.dumps(figures, indent=1)
    assert figures["confirmed"] == CI_PAYMENTS, json.dumps(figures, indent=1)
    assert figures["database"] == "postgresql"
    assert figures["node_kills"] == figures["node_restarts"] == 1
    assert figures["recovery_s"] is not None


def _postgres_admin_url() -> str | None:
    """The machine's PostgreSQL server; None (a private server for the run) when it does not
    answer and PostgreSQL's binaries are installed."""
    admin_url = os.environ.get("PAYMQ_TEST_POSTGRES_URL", POSTGRES_ADMIN_URL)
    try:
        drop_database(admin_url, create_database(admin_url, prefix="paymq_probe"))
    except DatabaseSetupFailed as exc:
        if postgres_installed():
            return None
        _missing(f"no PostgreSQL: {exc}")
    return admin_url

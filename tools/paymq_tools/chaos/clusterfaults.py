"""Faults of a three-node cluster (cluster.py): a node killed and started again, the nodes
restarted one after another, a node cut off from the others, quorum queue leaders moved.

Each records when it began and when the cluster was whole again (`Stage.spans`), for the
recovery figure: the longest time without a result event while it lasted. Like every fault
here, once begun it runs to its end and leaves the cluster whole (every queue of the run with
its three members online), even past the publishing window; only an abandoned run (Ctrl-C)
cuts a wait short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paymq_tools.chaos.disturbances import Stage

if TYPE_CHECKING:  # only the runner needs the machinery; the scenario table stays light
    from paymq_tools.chaos.cluster import PrivateCluster
    from paymq_tools.chaos.node import PrivateBroker

#: Connections of the workers (`paymq-worker-<channel>`, and `... (consumer)`).
WORKER_CONNECTIONS = "paymq-worker-"


class ClusterFaultFailed(RuntimeError):
    """The fault could not be made (the harness's failure, reported as such)."""


def _cluster(stage: Stage) -> PrivateCluster:
    if stage.cluster is None:
        raise ClusterFaultFailed("the scenario does not run on a cluster")
    return stage.cluster


def busiest(cluster: PrivateCluster) -> PrivateBroker:
    """The node most workers are connected to (the first node when none is)."""
    counts = cluster.connections_by_node(WORKER_CONNECTIONS)
    if not counts:
        return cluster.nodes[0]
    return cluster.node_named(counts.most_common(1)[0][0])


@dataclass(frozen=True)
class KillNode:
    """SIGKILL the node most workers are connected to at `at` of the window; start it again
    `down_s` later."""

    at: float = 0.2
    down_s: float = 30.0

    def describe(self) -> str:
        return (
            f"SIGKILL the node most workers use at {self.at:.0%}, start it again "
            f"{self.down_s:g} s later"
        )

    def run(self, stage: Stage, stop: threading.Event) -> None:
        _hold_on_busiest(stage, stop, _KILL, at=self.at, hold_s=self.down_s)


@dataclass(frozen=True)
class RollingRestart:
    """From `start_at` of the window, each node stopped and started again in turn, the next
    one only once every queue of the run is back on all three, `gap_s` apart."""

    start_at: float = 0.1
    gap_s: float = 3.0

    def describe(self) -> str:
        return f"restart the nodes one after another from {self.start_at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        cluster = _cluster(stage)
        stop.wait(self.start_at * stage.window_s)
        began = time.monotonic()
        try:
            for index, node in enumerate(cluster.nodes):
                if stage.aborted.is_set():
                    return
                if index:
                    stage.aborted.wait(self.gap_s)
                cluster.restart_node(node, stage.topology_prefix)
                stage.done["node restarts"] += 1
        finally:
            stage.spans.append((began, time.monotonic()))


@dataclass(frozen=True)
class PartitionNode:
    """The node most workers use is cut off from the other two (Erlang distribution) for
    `hold_s` at `at` of the window; then healed."""

    at: float = 0.3
    hold_s: float = 15.0

    def describe(self) -> str:
        return (
            f"the node most workers use is cut off from the other two for {self.hold_s:g} s "
            f"at {self.at:.0%}"
        )

    def run(self, stage: Stage, stop: threading.Event) -> None:
        _hold_on_busiest(stage, stop, _PARTITION, at=self.at, hold_s=self.hold_s)


@dataclass(frozen=True)
class MoveLeaders:
    """Every `every_s` seconds of the window, each quorum queue of the run gets its leader
    moved to the next of its members."""

    every_s: float = 3.0

    def describe(self) -> str:
        return f"move every queue's leader to another node every {self.every_s:g} s"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        cluster = _cluster(stage)
        began = time.monotonic()
        try:
            while not stop.wait(self.every_s):
                moves = {
                    queue.name: cluster.node_named(_next(queue.members, queue.leader))
                    for queue in cluster.queue_members(stage.topology_prefix)
                    if queue.type == "quorum" and queue.leader in queue.members
                }
                stage.done["leader transfers"] += cluster.transfer_leaders(moves)
        finally:
            stage.spans.append((began, time.monotonic()))


@dataclass(frozen=True)
class _NodeFault:
    """What strikes a node and what undoes it, and what each is counted as."""

    strike: Callable[[PrivateCluster, PrivateBroker], None]
    undo: Callable[[PrivateCluster, PrivateBroker], None]
    struck: str
    undone: str | None = None


_KILL = _NodeFault(
    lambda c, node: c.kill(node), lambda c, node: c.start_node(node), "node kills", "node restarts"
)
_PARTITION = _NodeFault(
    lambda c, node: c.partition(node), lambda c, node: c.heal(node), "node partitions"
)


def _hold_on_busiest(
    stage: Stage,
    stop: threading.Event,
    fault: _NodeFault,
    *,
    at: float,
    hold_s: float,
) -> None:
    """At `at` of the window, `fault` on the node most workers use, undone `hold_s` later
    (at once if the run is abandoned); over once every queue is back on all three nodes."""
    cluster = _cluster(stage)
    stop.wait(at * stage.window_s)
    if stage.aborted.is_set():
        return
    node = busiest(cluster)
    began = time.monotonic()
    fault.strike(cluster, node)
    stage.done[fault.struck] += 1
    try:
        stage.aborted.wait(hold_s)
    finally:
        fault.undo(cluster, node)
        if fault.undone is not None:
            stage.done[fault.undone] += 1
        cluster.await_replicated(stage.topology_prefix)
        stage.spans.append((began, time.monotonic()))


def _next(members: tuple[str, ...], leader: str) -> str:
    return members[(members.index(leader) + 1) % len(members)]

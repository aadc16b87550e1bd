"""Three private RabbitMQ nodes joined in one cluster, for the faults a single node cannot
have: a node killed, nodes restarted one after another, a node cut off from the others, queue
leaders moved.

Each node is a PrivateBroker (node.py): its own name, AMQP and distribution ports and
directory. The first one started alone; the others join it (`stop_app`, `join_cluster`,
`start_app`). Clients are given the comma-separated list of the three AMQP URLs.

Partition handling is `pause_minority`, the setting production clusters of three should run:
a node that sees fewer than half of the cluster stops serving (its listeners close, so clients
move to the majority) and resumes by itself once it sees the others again. With `ignore` a cut
off node would keep accepting clients that can neither publish nor consume quorum queues
(no quorum), and `autoheal` restarts the losing side after the fact.

A partition is made at the Erlang distribution level without root: the node's cookie is
changed from inside it (`rabbitmqctl eval`; the old cookie kept in the node, never read here)
and its distribution links dropped, so the others can neither reach it nor be reached by it.
Healing sets the cookie back and connects it to the others again.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

from paymq_tools.chaos.node import PrivateBroker
from paymq_tools.chaos.nodectl import BrokerNodeFailed, QueueDepth
from paymq_tools.chaos.queueview import (
    QueueMembers,
    connections_by_port,
    parse_depths,
    parse_members,
)

CLUSTER_SIZE = 3
PARTITION_HANDLING = "pause_minority"
#: The cookie of a node cut off from the others (a throwaway, not a secret).
PARTITION_COOKIE = "paymq-chaos-partitioned"
REJOIN_TIMEOUT_S = 120.0
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class PrivateCluster:
    """A context manager that always stops every node and removes their directories.

    with PrivateCluster(say=print) as cluster:
        run_things(cluster.url)
        cluster.kill(cluster.nodes[1])
    """

    def __init__(
        self,
        *,
        size: int = CLUSTER_SIZE,
        say: Callable[[str], None] = lambda _line: None,
        keep: bool = False,
        management: bool = False,
    ) -> None:
        config = (f"cluster_partition_handling = {PARTITION_HANDLING}",)
        self._say = say
        self.nodes = [
            PrivateBroker(say=say, keep=keep, config=config, management=management)
            for _ in range(size)
        ]
        self.url = ",".join(node.url for node in self.nodes)
        #: The nodes' management APIs, comma-separated (PAYMQ_MANAGEMENT_URL); None without.
        self.management_url = (
            ",".join(str(node.management_url) for node in self.nodes) if management else None
        )
        self._partitioned: set[str] = set()

    @property
    def port(self) -> int:
        """The first node's AMQP port. Nothing forwards to it: a cluster scenario has no link
        proxies (scenario.py refuses them), they stand for one node's link."""
        return self.nodes[0].port

    def __enter__(self) -> PrivateCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        failures: list[BaseException] = []

        def start(node: PrivateBroker) -> None:
            try:
                node.start()
            except BaseException as exc:  # reported below, from the caller's thread
                failures.append(exc)

        # In parallel: an Erlang VM's start is mostly waiting.
        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        self._say(f"cluster of {len(self.nodes)} up in {time.monotonic() - began:.1f} s")

    def close(self) -> None:
        for node in self.nodes:
            if node.node in self._partitioned:
                self._partitioned.discard(node.node)  # stopped with its cookie as it is
            node.close()

    # --- what the runner and the broker-wide disturbances use (broker.py) ---------------------

    def queue_depths(self, prefix: str = "") -> list[QueueDepth]:
        listed = self.ask(
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
        )
        return [d for d in parse_depths(listed) if d.name.startswith(prefix)]

    def restart(self) -> None:
        """Every node restarted, one after another, each back in the cluster before the next."""
        for node in self.nodes:
            self.restart_node(node)

    def close_all_connections(self, reason: str = "paymq chaos") -> None:
        self.ask("close_all_connections", reason)  # the command reaches every node

    def set_memory_high_watermark(self, fraction: float) -> None:
        for node in self.nodes:
            node.set_memory_high_watermark(fraction)

    def set_disk_free_limit(self, limit: str) -> None:
        for node in self.nodes:
            node.set_disk_free_limit(limit)

    @contextmanager
    def app_settings(self, settings: Mapping[str, int]) -> Iterator[None]:
        with ExitStack() as stack:
            for node in self.nodes:
                stack.enter_context(node.app_settings(settings))
            yield

    # --- inspection ---------------------------------------------------------------------------

    def ask(self, *args: str) -> bytes:
        """What `rabbitmqctl <args>` prints, from the first node that runs, is not cut off and
        answers (one being stopped or started by a fault may not)."""
        failures = []
        for node in self.nodes:
            if node.running and node.node not in self._partitioned:
                try:
                    return node.ctl(*args).stdout
                except (BrokerNodeFailed, subprocess.TimeoutExpired) as exc:
                    failures.append(str(exc))
        raise BrokerNodeFailed(f"no node of the cluster answers: {failures}")

    def queue_members(self, prefix: str = "") -> list[QueueMembers]:
        """Each queue's type, leader, members and members online (every node's view agrees
        but a cut off one's)."""
        listed = self.ask(
            "list_queues", "name", "type", "leader", "members", "online", "--formatter", "json"
        )
        return [q for q in parse_members(listed) if q.name.startswith(prefix)]

    def connections_by_node(self, name_prefix: str = "") -> Counter[str]:
        """Client connections per node, of clients whose connection name starts so."""
        listed = self.ask("list_connections", "port", "client_properties", "--formatter", "json")
        by_port = connections_by_port(listed, name_prefix)
        return Counter({n.node: by_port[n.port] for n in self.nodes if by_port[n.port]})

    def await_replicated(self, prefix: str, timeout_s: float = REJOIN_TIMEOUT_S) -> None:
        """Until every queue of `prefix` has a leader and all the cluster's nodes as members
        online."""
        everyone = {node.node for node in self.nodes}
        deadline = time.monotonic() + timeout_s
        while True:
            queues = self.queue_members(prefix)
            behind = [q.name for q in queues if not q.leader or set(q.online) != everyone]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise BrokerNodeFailed(
                    f"queues not back on every node in {timeout_s:.0f} s: {behind}"
                )
            time.sleep(0.5)

    def node_named(self, name: str) -> PrivateBroker:
        for node in self.nodes:
            if node.node == name:
                return node
        raise KeyError(name)

    # --- faults -------------------------------------------------------------------------------

    def kill(self, node: PrivateBroker) -> None:
        node.kill()

    def start_node(self, node: PrivateBroker) -> None:
        """Start a node that was killed or stopped; it rejoins the cluster from its data."""
        node.restart()

    def restart_node(self, node: PrivateBroker, prefix: str = "") -> None:
        """Stop one node and start it again; return once `prefix`'s queues are online on
        every node again."""
        node.restart()
        self.await_replicated(prefix)

    def partition(self, node: PrivateBroker) -> None:
        """Cut `node` off from the others at the Erlang distribution level."""
        node.ctl(
            "eval",
            "persistent_term:put(paymq_chaos_cookie, erlang:get_cookie()), "
            f"erlang:set_cookie(node(), '{PARTITION_COOKIE}'), "
            "[erlang:disconnect_node(N) || N <- nodes()], ok.",
        )
        self._partitioned.add(node.node)

    def heal(self, node: PrivateBroker) -> None:
        """Give `node` its cookie back and connect it to the others again (pause_minority
        then starts it serving by itself)."""
        node.ctl(
            "eval",
            "erlang:set_cookie(node(), persistent_term:get(paymq_chaos_cookie)), "
            "[net_kernel:connect_node(N) || N <- rabbit_nodes:all()], ok.",
            cookie=PARTITION_COOKIE,
        )
        self._partitioned.discard(node.node)

    def transfer_leaders(self, moves: Mapping[str, PrivateBroker]) -> int:
        """Move each quorum queue's leader to the node given for it, in one `eval`; how many
        moved (a queue whose leader is busy electing may answer `not_migrated`)."""
        for queue in moves:
            if not _QUEUE_NAME.fullmatch(queue):
                raise ValueError(f"not a queue name we can put in an eval: {queue!r}")
        if not moves:
            return 0
        pairs = ", ".join(f"{{<<\"{queue}\">>, '{to.node}'}}" for queue, to in moves.items())
        answer = self.ask(
            "eval",
            '[begin {ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, Name)), '
            "rabbit_quorum_queue:transfer_leadership(Q, To) end "
            f"|| {{Name, To}} <- [{pairs}]].",
        )
        return answer.decode().count("{migrated,")

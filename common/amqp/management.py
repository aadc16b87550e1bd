"""RabbitMQ's management HTTP API, read only: the cluster's nodes, and each quorum queue's
leader, members and the members online, which AMQP cannot tell.

The API is a plugin (`rabbitmq-plugins enable rabbitmq_management`); its user needs the
`monitoring` tag (or `administrator`). Without a URL of its own, it is looked for on port
15672 (15671 for amqps://) of every broker node, with the broker URL's user and password.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from common.amqp.nodes import node_urls, redact
from common.errors import BrokerUnavailable, ConfigurationError

TIMEOUT_S = 5.0
#: RabbitMQ's quorum_cluster_size: members of a quorum queue declared without a group size.
DEFAULT_REPLICAS = 3
_PORTS = {"amqp": ("http", 15672), "amqps": ("https", 15671)}
_HTTP_UNAUTHORIZED = 401


class ManagementUnavailable(BrokerUnavailable):
    code = "management_unavailable"


@dataclass(frozen=True)
class ClusterNode:
    name: str
    running: bool


@dataclass(frozen=True)
class QueueReplicas:
    name: str
    queue_type: str
    leader: str | None
    members: tuple[str, ...]
    online: tuple[str, ...]

    @property
    def at_risk(self) -> bool:
        """Not replicated, or not serving now: no leader, or a minority of members online."""
        return (
            self.queue_type != "quorum"
            or not self.leader
            or len(self.online) <= len(self.members) // 2
        )

    def problems(self, wanted_members: int) -> list[str]:
        """What an operator must know, worst first; empty for a healthy queue."""
        if self.queue_type != "quorum":
            return [f"a {self.queue_type} queue, not quorum: it is not replicated"]
        members, online = len(self.members), len(self.online)
        found = []
        if online <= members // 2:
            found.append(
                f"quorum lost: {online} of {members} members online; the queue takes no "
                "publishes and delivers nothing until a majority is back"
            )
        elif online < members:
            found.append(f"{members - online} of {members} members offline")
        if not self.leader:
            found.append("no leader")
        if members < wanted_members:
            found.append(f"{members} members, {wanted_members} wanted")
        return found


def management_urls(amqp_address: str, management_url: str | None) -> tuple[str, ...]:
    """The API's base URLs: those given, or one per broker node (see the module's doc)."""
    if management_url:
        return tuple(url.strip().rstrip("/") for url in management_url.split(","))
    urls = []
    for node in node_urls(amqp_address):
        parts = urlsplit(node)
        scheme, port = _PORTS.get(parts.scheme, ("http", 15672))
        credentials = parts.netloc.rpartition("@")[0]
        userinfo = f"{credentials}@" if credentials else "guest:guest@"
        urls.append(f"{scheme}://{userinfo}{parts.hostname}:{port}")
    return tuple(urls)


def vhost_of(amqp_address: str) -> str:
    path = urlsplit(node_urls(amqp_address)[0]).path
    return unquote(path[1:]) if len(path) > 1 else "/"


class ManagementApi:
    """Asks each base URL in turn until one answers."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float = TIMEOUT_S) -> None:
        self._urls = tuple(urls)
        self._timeout_s = timeout_s
        self._http = requests.Session()
        self._http.trust_env = False  # the broker's own address, never through a proxy

    def __enter__(self) -> ManagementApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def nodes(self) -> list[ClusterNode]:
        answer = self._get("/api/nodes", columns="name,running")
        return [ClusterNode(str(node["name"]), bool(node.get("running"))) for node in answer]

    def queues(self, vhost: str, prefix: str) -> list[QueueReplicas]:
        """The vhost's queues whose names start with `prefix.`, by name."""
        answer = self._get(
            f"/api/queues/{quote(vhost, safe='')}", columns="name,type,leader,members,online"
        )
        found = [
            QueueReplicas(
                name=str(queue["name"]),
                queue_type=str(queue.get("type", "classic")),
                leader=queue.get("leader") or None,
                members=tuple(queue.get("members") or ()),
                online=tuple(queue.get("online") or ()),
            )
            for queue in answer
            if str(queue["name"]).startswith(f"{prefix}.")
        ]
        return sorted(found, key=lambda queue: queue.name)

    def _get(self, path: str, **params: str) -> Any:
        failures = []
        for base in self._urls:
            try:
                response = self._http.get(base + path, params=params, timeout=self._timeout_s)
            except requests.RequestException as exc:
                failures.append(f"{redact(base)}: {type(exc).__name__}")
                continue
            if response.status_code == _HTTP_UNAUTHORIZED:
                raise ConfigurationError(
                    f"the management API at {redact(base)} refused the user: it needs the "
                    "monitoring (or administrator) tag, or set PAYMQ_MANAGEMENT_URL with "
                    "credentials that have it"
                )
            if not response.ok:
                failures.append(f"{redact(base)}: HTTP {response.status_code}")
                continue
            return response.json()
        raise ManagementUnavailable(
            "no RabbitMQ management API answers ("
            + "; ".join(failures)
            + "): enable it on the nodes (rabbitmq-plugins enable rabbitmq_management) or set "
            "PAYMQ_MANAGEMENT_URL"
        )


def wanted_members(quorum_replicas: int | None, cluster_size: int) -> int:
    """Members a new quorum queue gets: the setting, or RabbitMQ's default (one per node, up
    to 3); never more than the cluster has."""
    return min(quorum_replicas or DEFAULT_REPLICAS, cluster_size)


def replication_shortfall(quorum_replicas: int | None, nodes: Sequence[ClusterNode]) -> str | None:
    """A warning when the cluster has fewer nodes than the replicas asked for."""
    size = len(nodes)
    if quorum_replicas is not None and quorum_replicas > size:
        return (
            f"PAYMQ_QUORUM_REPLICAS is {quorum_replicas} but the cluster has {size} "
            f"node{'s' if size != 1 else ''}: new queues get {size} member"
            f"{'s' if size != 1 else ''}, and tolerate the loss of {(size - 1) // 2}"
        )
    return None

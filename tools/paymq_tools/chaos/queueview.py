"""What a cluster's nodes say about its queues and its clients, read from rabbitmqctl's JSON
(`list_queues`, `list_connections port client_properties`).
Pure: bytes in, values out."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from paymq_tools.chaos.nodectl import QueueDepth


@dataclass(frozen=True)
class QueueMembers:
    name: str
    type: str
    #: The node of the quorum queue's leader ("" while it has none).
    leader: str
    members: tuple[str, ...]
    #: The members that run now.
    online: tuple[str, ...]


def parse_members(listed: bytes) -> list[QueueMembers]:
    """`rabbitmqctl list_queues name type leader members online --formatter json`."""
    return [
        QueueMembers(
            name=str(queue["name"]),
            type=str(queue.get("type", "")),
            leader=_text(queue.get("leader")),
            members=tuple(sorted(_names(queue.get("members")))),
            online=tuple(sorted(_names(queue.get("online")))),
        )
        for queue in json.loads(listed or b"[]")
    ]


def parse_depths(listed: bytes) -> list[QueueDepth]:
    """`rabbitmqctl list_queues name messages_ready messages_unacknowledged --formatter
    json`."""
    return [
        QueueDepth(
            str(q["name"]),
            _count(q.get("messages_ready")),
            _count(q.get("messages_unacknowledged")),
        )
        for q in json.loads(listed or b"[]")
    ]


def connections_by_port(listed: bytes, name_prefix: str = "") -> Counter[int]:
    """Connections per server port (each node has its own AMQP port) from `rabbitmqctl
    list_connections port client_properties --formatter json`, of clients whose connection
    name starts with `name_prefix`."""
    counts: Counter[int] = Counter()
    for connection in json.loads(listed or b"[]"):
        if _connection_name(connection.get("client_properties")).startswith(name_prefix):
            counts[int(connection["port"])] += 1
    return counts


def _connection_name(properties: object) -> str:
    # An AMQP table as rabbitmqctl writes it: [[key, type, value], ...].
    if isinstance(properties, list):
        for entry in properties:
            if isinstance(entry, list) and len(entry) == 3 and entry[0] == "connection_name":
                return str(entry[2])
    return ""


def _count(value: object) -> int:
    # A queue without a leader has no counts: -1, never taken for an empty queue.
    return value if isinstance(value, int) else -1


def _text(value: object) -> str:
    # An empty Erlang value comes out as "" or as a list; a node name as a string.
    return value if isinstance(value, str) else ""


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []

"""What rabbitmqctl's JSON says about a cluster's queues and clients. Pure: no processes."""

from __future__ import annotations

import json

from paymq_tools.chaos.queueview import (
    QueueMembers,
    connections_by_port,
    parse_depths,
    parse_members,
)

A, B, C = "n-a@localhost", "n-b@localhost", "n-c@localhost"


def test_a_queue_lists_its_leader_and_its_members_online() -> None:
    listed = json.dumps(
        [
            {
                "name": "p.work.card",
                "type": "quorum",
                "leader": B,
                "members": [C, A, B],
                "online": [B, A],
            }
        ]
    ).encode()

    assert parse_members(listed) == [
        QueueMembers("p.work.card", "quorum", B, members=(A, B, C), online=(A, B))
    ]


def test_a_queue_without_a_leader_has_an_empty_leader() -> None:
    listed = json.dumps(
        [{"name": "q", "type": "quorum", "leader": [], "members": [A], "online": []}]
    )

    [queue] = parse_members(listed.encode())

    assert queue.leader == ""
    assert queue.online == ()


def test_connections_are_counted_per_server_port_by_their_client_name() -> None:
    def connection(port: int, name: str | None) -> dict[str, object]:
        properties = [["product", "longstr", "Pika"]]
        if name is not None:
            properties.append(["connection_name", "longstr", name])
        return {"port": port, "client_properties": properties}

    listed = json.dumps(
        [
            connection(5001, "paymq-worker-card"),
            connection(5001, "paymq-worker-card (consumer)"),
            connection(5002, "paymq-worker-digital_currency"),
            connection(5002, "paymq-chaos-producer"),
            connection(5003, None),
        ]
    ).encode()

    assert connections_by_port(listed, "paymq-worker-") == {5001: 2, 5002: 1}


def test_a_queue_without_counts_is_never_taken_for_empty() -> None:
    listed = json.dumps(
        [
            {"name": "a", "messages_ready": 0, "messages_unacknowledged": 0},
            {"name": "b", "messages_ready": "", "messages_unacknowledged": ""},
        ]
    ).encode()

    a, b = parse_depths(listed)

    assert a.total == 0
    assert b.total != 0

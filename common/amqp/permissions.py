"""Broker users per role: what each paymq process may configure, write and read on RabbitMQ,
and the definitions document that creates those users. Pure: no connection, no clock.

RabbitMQ checks three regular expressions per user and virtual host, against the name of the
exchange or queue each operation touches (https://www.rabbitmq.com/docs/access-control):

    declare or delete an exchange or a queue    configure on it
    publish                                     write on the exchange
    bind a queue to an exchange                 write on the queue, read on the exchange
    consume or get                              read on the queue

Dead-lettering and the retry tiers' expiry move messages inside the broker and check nobody's
permissions. Passive declares (paymq's queue gauges, and the topology check of a process that
does not declare) check none either. So only the admin configures the topology, and every other
process writes and reads exactly the exchanges and queues of its duty. The expressions name
every exchange and queue in full: after a change to the topology's settings (the prefix, the
retry tiers), generate the users' permissions again.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.topology import Topology

#: RabbitMQ's name for the hashing of `password_hash` below (its default since 3.6).
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
#: Bytes of salt RabbitMQ puts before the digest.
SALT_BYTES = 4
#: The names RabbitMQ gives server-named queues (a subscriber's private queue).
SERVER_NAMED = r"amq\.gen-.*"
#: An expression that matches no exchange or queue.
NOTHING = "^$"


@dataclass(frozen=True)
class Permissions:
    configure: str = NOTHING
    write: str = NOTHING
    read: str = NOTHING


@dataclass(frozen=True)
class BrokerRole:
    """One kind of process, its broker user's permissions and tags."""

    name: str
    #: The processes that connect as this role's user.
    runs: str
    permissions: Permissions
    #: `monitoring` lets the admin read the management API (`paymq topology status`).
    tags: tuple[str, ...] = ()

    def user(self, topology: Topology) -> str:
        """The user's name: the topology's prefix and the role, e.g. paymq-worker-card."""
        return f"{topology.prefix}-{self.name}"


def exactly(*names: str) -> str:
    """An expression that matches these names and nothing else."""
    if not names:
        return NOTHING
    return "^(" + "|".join(re.escape(name) for name in sorted(set(names))) + ")$"


def broker_roles(topology: Topology) -> list[BrokerRole]:
    """Every role, in the order of docs/docker.md's table."""
    t = topology
    exchanges = [exchange.name for exchange in t.exchanges()]
    queues = [queue.name for queue in t.queues()] + [t.webhooks_queue]
    retry_tiers = [t.retry_exchange(delay_ms) for delay_ms in t.retry_delays_ms]
    everything = exactly(*exchanges, *queues)
    request_signers = Permissions(write=exactly(t.requests_exchange))
    workers = [
        BrokerRole(
            f"worker-{channel}",
            f"paymq worker {channel}, and the reconciler in it",
            Permissions(
                # Results; retries; dead letters; and a request delivered too often goes back
                # to the requests exchange as a fresh copy.
                write=exactly(
                    t.results_exchange, t.dead_letter_exchange, t.requests_exchange, *retry_tiers
                ),
                read=exactly(t.work_queue(channel)),
            ),
        )
        for channel in t.channels
    ]
    return [
        BrokerRole(
            "admin",
            "paymq topology declare, paymq topology status, paymq dlq",
            Permissions(configure=everything, write=everything, read=everything),
            tags=("monitoring",),
        ),
        BrokerRole("api", "paymq api serve", request_signers),
        BrokerRole("producer", "paymq publish, and programs using the producer", request_signers),
        *workers,
        BrokerRole("reconciler", "paymq reconcile", Permissions(write=exactly(t.results_exchange))),
        BrokerRole(
            "webhooks",
            "paymq webhooks run",
            Permissions(
                # It declares its own queue and binds it to the results exchange.
                configure=exactly(t.webhooks_queue),
                write=exactly(t.webhooks_queue, t.dead_letter_exchange),
                read=exactly(t.webhooks_queue, t.results_exchange),
            ),
        ),
        BrokerRole(
            "subscriber",
            "paymq results tail, and programs reading result events",
            Permissions(
                # The durable notifications queue, or a private server-named queue of its own
                # bound to the results exchange.
                configure=f"^{SERVER_NAMED}$",
                write=f"^{SERVER_NAMED}$",
                read=f"^({re.escape(t.notifications_queue)}|{re.escape(t.results_exchange)}"
                f"|{SERVER_NAMED})$",
            ),
        ),
    ]


def password_hash(password: str, salt: bytes) -> str:
    """The password as RabbitMQ stores it: base64 of the salt and SHA-256(salt + password)."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the salt is {SALT_BYTES} bytes, not {len(salt)}")
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def definitions(
    topology: Topology,
    vhost: str,
    password_hashes: Mapping[str, str],
    roles: Iterable[BrokerRole] | None = None,
) -> dict[str, Any]:
    """A RabbitMQ definitions document (`rabbitmqctl import_definitions`, the management UI's
    import, or `load_definitions`) creating the virtual host and one user per role, each with
    its permissions there. `password_hashes` holds each user's `password_hash`, by user name."""
    chosen = list(broker_roles(topology) if roles is None else roles)
    missing = [role.user(topology) for role in chosen if role.user(topology) not in password_hashes]
    if missing:
        raise ValueError(f"no password hash for {', '.join(missing)}")
    return {
        "users": [
            {
                "name": role.user(topology),
                "password_hash": password_hashes[role.user(topology)],
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": list(role.tags),
            }
            for role in chosen
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {
                "user": role.user(topology),
                "vhost": vhost,
                "configure": role.permissions.configure,
                "write": role.permissions.write,
                "read": role.permissions.read,
            }
            for role in chosen
        ],
    }

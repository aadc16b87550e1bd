"""The broker users per role (common/amqp/permissions.py): what each may configure, write and
read, checked the way RabbitMQ checks it (the expression searched in the resource's name), and
the definitions document that creates them. tests/integration/test_broker_users.py holds the
same users to the real broker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.amqp.permissions import (
    HASHING_ALGORITHM,
    BrokerRole,
    broker_roles,
    definitions,
    exactly,
    password_hash,
)
from common.topology import Topology

TOPOLOGY = Topology(prefix="paymq", retry_delays_ms=(1_000, 5_000))
EXCHANGES = {exchange.name for exchange in TOPOLOGY.exchanges()}
QUEUES = {queue.name for queue in TOPOLOGY.queues()} | {TOPOLOGY.webhooks_queue}
#: Every name a permission could be asked about: the topology, the default exchange (as
#: RabbitMQ names it for permissions), and a subscriber's server-named queue.
NAMES = EXCHANGES | QUEUES | {"amq.default", "amq.gen-JzTY20BRgKO-HjmUJj0wLg"}


def allowed(role: BrokerRole, kind: str) -> set[str]:
    pattern = getattr(role.permissions, kind)
    return {name for name in NAMES if re.search(pattern, name)}


ROLES = {role.name: role for role in broker_roles(TOPOLOGY)}
RETRY_TIERS = {"paymq.retry.1000ms", "paymq.retry.5000ms"}
WORKER_WRITES = {"paymq.results", "paymq.dead-letter", "paymq.requests", *RETRY_TIERS}

#: role: (configure, write, read), as docs/docker.md's table of broker users says.
DUTIES: dict[str, tuple[set[str], set[str], set[str]]] = {
    "admin": (EXCHANGES | QUEUES, EXCHANGES | QUEUES, EXCHANGES | QUEUES),
    "api": (set(), {"paymq.requests"}, set()),
    "producer": (set(), {"paymq.requests"}, set()),
    "worker-card": (set(), WORKER_WRITES, {"paymq.work.card"}),
    "worker-digital_currency": (set(), WORKER_WRITES, {"paymq.work.digital_currency"}),
    "reconciler": (set(), {"paymq.results"}, set()),
    "webhooks": (
        {"paymq.webhooks"},
        {"paymq.webhooks", "paymq.dead-letter"},
        {"paymq.webhooks", "paymq.results"},
    ),
    "subscriber": (
        {"amq.gen-JzTY20BRgKO-HjmUJj0wLg"},
        {"amq.gen-JzTY20BRgKO-HjmUJj0wLg"},
        {"paymq.notifications", "paymq.results", "amq.gen-JzTY20BRgKO-HjmUJj0wLg"},
    ),
}


def test_there_is_a_role_for_each_kind_of_process_and_a_worker_per_channel() -> None:
    assert list(ROLES) == list(DUTIES)


@pytest.mark.parametrize("name", DUTIES)
def test_each_role_may_configure_write_and_read_exactly_its_duty(name: str) -> None:
    role = ROLES[name]
    configure, write, read = DUTIES[name]

    assert allowed(role, "configure") == configure
    assert allowed(role, "write") == write
    assert allowed(role, "read") == read


def test_only_the_admin_may_configure_what_the_processes_share() -> None:
    shared = (EXCHANGES | QUEUES) - {TOPOLOGY.webhooks_queue}
    for role in ROLES.values():
        if role.name != "admin":
            assert not allowed(role, "configure") & shared, role.name


def test_only_the_admin_may_see_the_management_api() -> None:
    assert {role.name: role.tags for role in ROLES.values() if role.tags} == {
        "admin": ("monitoring",)
    }


def test_users_are_named_after_the_topology_prefix_and_the_role() -> None:
    shop = Topology(prefix="shop")
    assert [role.user(shop) for role in broker_roles(shop)][:2] == ["shop-admin", "shop-api"]


def test_a_prefix_is_matched_literally_never_as_a_pattern() -> None:
    dotted = Topology(prefix="a.b")
    producer = next(role for role in broker_roles(dotted) if role.name == "producer")

    assert re.search(producer.permissions.write, "a.b.requests")
    assert not re.search(producer.permissions.write, "aXb.requests")
    assert not re.search(producer.permissions.write, "a.b.requests.x")


def test_no_name_is_an_expression_that_matches_nothing() -> None:
    assert exactly() == "^$"
    assert not any(re.search(exactly(), name) for name in NAMES)


def test_the_password_hash_is_rabbitmqs_salted_sha256() -> None:
    # The worked example of RabbitMQ's documentation (Credentials and Passwords): salt
    # 908D C60A, password "test12".
    salt = bytes.fromhex("908DC60A")

    assert password_hash("test12", salt) == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"


def test_a_salt_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="the salt is 4 bytes, not 8"):
        password_hash("test12", bytes(8))


def test_the_definitions_create_the_vhost_and_each_user_with_its_permissions_there() -> None:
    hashes = {role.user(TOPOLOGY): f"hash-of-{role.name}" for role in ROLES.values()}

    document = definitions(TOPOLOGY, "payments", hashes)

    assert document["vhosts"] == [{"name": "payments"}]
    assert [user["name"] for user in document["users"]] == list(hashes)
    admin = document["users"][0]
    assert admin == {
        "name": "paymq-admin",
        "password_hash": "hash-of-admin",
        "hashing_algorithm": HASHING_ALGORITHM,
        "tags": ["monitoring"],
    }
    worker = next(p for p in document["permissions"] if p["user"] == "paymq-worker-card")
    assert worker == {
        "user": "paymq-worker-card",
        "vhost": "payments",
        "configure": "^$",
        "write": ROLES["worker-card"].permissions.write,
        "read": r"^(paymq\.work\.card)$",
    }
    # No password in clear, and nothing beyond users, the vhost and permissions (an import
    # changes nothing else on the broker).
    assert set(document) == {"users", "vhosts", "permissions"}


def test_a_user_without_a_password_hash_is_refused_naming_it() -> None:
    hashes = {role.user(TOPOLOGY): "h" for role in ROLES.values() if role.name != "webhooks"}

    with pytest.raises(ValueError, match="no password hash for paymq-webhooks"):
        definitions(TOPOLOGY, "/", hashes)


def test_docs_dockers_table_of_broker_users_names_every_role() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "docker.md").read_text()
    table = docs.split("| User | Runs | Configure | Write | Read |", 1)[1].split("\n\n", 1)[0]

    for role in ROLES.values():
        assert f"`{role.user(Topology())}`" in table, role.name

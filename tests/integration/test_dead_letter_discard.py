"""`paymq dlq discard`: a dead letter leaves the queue only with its audit record committed to
the payment store (who, when, why, and the message), on SQLite and on PostgreSQL."""

from __future__ import annotations

import getpass
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from common.amqp.admin import BrokerAdmin
from common.amqp.browse import QueueBrowser
from common.settings import Settings
from store.discards import Discards
from tests.integration.helpers import cli_env, publish_dead_letter, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_env(topology: Settings, keys_dir: Path) -> dict[str, str]:
    """The CLI's environment: the test's topology."""
    return cli_env(
        PAYMQ_AMQP_URL=topology.broker.amqp_url,
        PAYMQ_TOPOLOGY_PREFIX=topology.broker.topology_prefix,
        PAYMQ_KEYS_DIR=str(keys_dir),
    )


@pytest.fixture
def env(broker_env: dict[str, str], store_engine: Engine) -> dict[str, str]:
    """The CLI's environment: the test's topology, and its migrated store."""
    url = store_engine.url.render_as_string(hide_password=False)
    return broker_env | {"PAYMQ_DATABASE_URL": url}


def _left_in(settings: Settings) -> list[str]:
    with QueueBrowser(
        settings.broker.amqp_url, settings.broker.topology().dead_letter_queue
    ) as browser:
        return sorted(held.message.message_id or "" for held in browser.take(100))


def test_a_discard_by_code_records_who_when_why_and_the_message_then_removes_it(
    topology: Settings,
    admin: BrokerAdmin,
    store_engine: Engine,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Given a dead letter that must not be replayed, and one that waits for a replay
    conflict = publish_dead_letter(
        topology, admin, code="idempotency_conflict", reason="key order-1 is another payment's"
    )
    other = publish_dead_letter(topology, admin, code="unknown_key")
    # When an operator discards by code, with a reason, naming herself
    done = run_cli(
        "dlq", "discard", "--code", "idempotency_conflict", "--reason", "duplicate order, "
        "refunded by hand (ticket OPS-12)", "--by", "alice", "--yes", env=env, cwd=tmp_path,
    )  # fmt: skip
    # Then it is gone from the queue, and the other stays
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 discarded by alice" in done.stdout
    assert _left_in(topology) == [other.message_id]
    # and the store holds the record: who, why, which message, byte for byte
    [record] = Discards(store_engine).recent(10)
    assert record.discarded_by == "alice"
    assert record.reason == "duplicate order, refunded by hand (ticket OPS-12)"
    assert record.message_id == conflict.message_id
    assert record.channel == "card"
    assert record.code == "idempotency_conflict"
    assert record.dead_letter_reason == "key order-1 is another payment's"
    assert record.body == conflict.body
    assert record.body_sha256 == hashlib.sha256(conflict.body).hexdigest()
    assert record.headers["paymq-signature"] == conflict.headers["paymq-signature"]
    # and `dlq discarded` shows it
    listed = run_cli("dlq", "discarded", "--json", env=env, cwd=tmp_path)
    [shown] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert shown["message_id"] == conflict.message_id
    assert shown["discarded_by"] == "alice"


def test_without_yes_the_operator_is_asked_and_a_no_keeps_everything(
    topology: Settings,
    admin: BrokerAdmin,
    store_engine: Engine,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Given a dead letter
    message = publish_dead_letter(topology, admin)
    # When the operator answers no (and then nothing at all) to the question
    for answer in ("n\n", ""):
        declined = run_cli(
            "dlq", "discard", message.message_id, "--reason", "test", env=env, cwd=tmp_path,
            stdin=answer,
        )  # fmt: skip
        # Then nothing is discarded, nothing recorded
        assert declined.returncode == 1, declined.stdout + declined.stderr
        assert "Discard these 1 dead letters for good" in declined.stdout
        assert _left_in(topology) == [message.message_id]
        assert Discards(store_engine).recent(10) == []
    # When the operator answers yes, without --by
    agreed = run_cli(
        "dlq", "discard", "--all", "--reason", "test data", env=env, cwd=tmp_path, stdin="y\n"
    )
    # Then it is discarded in the name of the operating system's user
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert _left_in(topology) == []
    [record] = Discards(store_engine).recent(10)
    assert record.discarded_by == getpass.getuser()


def test_a_record_the_store_refuses_to_write_leaves_the_dead_letter_in_the_queue(
    topology: Settings,
    admin: BrokerAdmin,
    store_engine: Engine,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Given a dead letter, and a store whose audit table cannot be written
    message = publish_dead_letter(topology, admin)
    with store_engine.begin() as connection:
        connection.execute(text("DROP TABLE dead_letter_discards"))
    # When an operator discards it
    failed = run_cli("dlq", "discard", "--all", "--reason", "test", "--yes", env=env, cwd=tmp_path)
    # Then the command fails, and the message is still there, its deliveries unspent
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "payment store unavailable" in failed.stderr
    with QueueBrowser(
        topology.broker.amqp_url, topology.broker.topology().dead_letter_queue
    ) as browser:
        [held] = browser.take(10)
    assert held.message.message_id == message.message_id
    assert held.message.headers.get("x-delivery-count", 0) == 0


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (("--all",), "Missing option '--reason'"),
        (("--all", "--reason", "  "), "--reason is empty"),
        (("--all", "--reason", "card 4242 4242 4242 4242 bounced"), "looks like a card number"),
        (("--reason", "no selection"), "name message ids, --code CODE or --all"),
        (("--all", "--reason", "test", "--by", ""), "--by is empty"),
    ],
    ids=["no-reason", "blank-reason", "card-number", "no-selection", "blank-by"],
)
def test_a_discard_called_wrong_says_why_and_takes_nothing(
    topology: Settings,
    admin: BrokerAdmin,
    broker_env: dict[str, str],
    tmp_path: Path,
    arguments: tuple[str, ...],
    says: str,
) -> None:
    message = publish_dead_letter(topology, admin)
    refused = run_cli("dlq", "discard", *arguments, "--yes", env=broker_env, cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert says in refused.stdout + refused.stderr
    assert _left_in(topology) == [message.message_id]

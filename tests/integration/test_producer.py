"""The producer on the real broker: a message is done only when confirmed, and anything else is
an error the caller sees, never a silent drop or a hang."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from pathlib import Path
from typing import TypeVar

import pytest

from common.amqp.admin import BrokerAdmin
from common.clock import SystemClock
from common.envelope import OutboundMessage
from common.errors import PublishFailed, Unroutable
from common.settings import Settings
from common.signing import Signer
from paymq.publishing import publish_file
from producer.encode import encode_request
from producer.orders import read_orders
from producer.producer import Producer, PublishOutcome
from tests.integration.helpers import (
    card_draft,
    close_connections,
    drain,
    require_rabbitmqctl,
    wait_until,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture
def thread_crashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Exceptions that end a thread during the test, recorded (as text, holding no frames) for
    the test to judge, instead of failing whichever later phase pytest reports them in."""
    crashes: list[str] = []

    def record(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        crashes.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", record)
    return crashes


def test_publishing_to_a_channel_without_a_queue_raises_unroutable(
    topology: Settings, producer: Producer, admin: BrokerAdmin
) -> None:
    # Given a signed payment whose routing key no queue is bound for
    _, message = producer.prepare(card_draft())
    nowhere = dataclasses.replace(message, routing_key="nope")
    # When it is published, the producer says so at once instead of reporting success
    with pytest.raises(Unroutable):
        producer.publish(nowhere)
    [outcome] = producer.publish_many([nowhere])
    assert not outcome.ok
    assert isinstance(outcome.error, Unroutable)
    assert outcome.attempts == 1  # permanent: not republished
    # Then the channel still works: the same payment, routed right, is confirmed and queued
    producer.publish(message)
    topo = topology.broker.topology()
    assert [m.message_id for m in drain(admin, topo.work_queue("card"))] == [message.message_id]
    assert admin.stats(topo.work_queue("digital_currency")).messages == 0


def _undeclared(topology: Settings) -> Settings:
    """Settings of a producer whose topology nobody declared, with short publish timeouts."""
    return topology.replace(
        topology_prefix=f"never-declared-{uuid.uuid4().hex[:8]}",
        publish_attempts=2,
        publish_timeout_s=2.0,
    )


def _undeclared_message(settings: Settings) -> OutboundMessage:
    now_ms = SystemClock().now_ms()
    _, message = encode_request(
        card_draft(),
        signer=Signer.load(settings.keys.keys_dir, settings.keys.producer_key_id),
        topology=settings.broker.topology(),
        created_at_ms=now_ms,
        expires_at_ms=now_ms + 60_000,
        sealing_key=None,
    )
    return message


def _publish_each(settings: Settings, *messages: OutboundMessage) -> list[PublishOutcome]:
    """Publish the messages one after the other with a producer of their own."""
    with Producer.from_settings(settings, name="paymq-test-missing-exchange") as producer:
        return [producer.publish_many([message])[0] for message in messages]


def test_publishing_to_a_missing_exchange_fails_after_the_configured_attempts(
    topology: Settings,
) -> None:
    # Given a producer configured for a topology nobody declared
    settings = _undeclared(topology)
    message = _undeclared_message(settings)
    # When a payment is published
    started = time.monotonic()
    [outcome] = _publish_each(settings, message)
    # Then it fails after exactly the configured attempts, within the timeouts: no hang
    assert not outcome.ok
    assert outcome.attempts == settings.broker.publish_attempts
    assert isinstance(outcome.error, PublishFailed)
    limit_s = settings.broker.publish_attempts * (
        settings.broker.publish_timeout_s + settings.broker.reconnect_max_delay_s
    )
    assert time.monotonic() - started < limit_s


def test_a_publish_refused_by_the_broker_names_the_reason_and_leaves_the_producer_usable(
    topology: Settings, admin: BrokerAdmin, thread_crashes: list[str]
) -> None:
    # Given a producer whose exchange does not exist
    settings = _undeclared(topology)
    message = _undeclared_message(settings)
    declared = topology.broker.topology()
    elsewhere = dataclasses.replace(message, exchange=declared.requests_exchange)
    # When it publishes there, then to an exchange that exists
    refused, accepted = _publish_each(settings, message, elsewhere)
    # Then every attempt of the first names the broker's reason, and the second is confirmed
    assert thread_crashes == []
    assert "no exchange" in str(refused.error)
    assert accepted.ok, accepted.error
    assert admin.stats(declared.work_queue("card")).messages == 1


def test_a_batch_of_500_is_confirmed_and_queued_in_full(
    topology: Settings, producer: Producer, admin: BrokerAdmin
) -> None:
    messages = [producer.prepare(card_draft())[1] for _ in range(500)]
    outcomes = producer.publish_many(messages)
    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert all(o.ok for o in outcomes), next(o.error for o in outcomes if not o.ok)
    queue = topology.broker.topology().work_queue("card")
    wait_until(lambda: admin.stats(queue).messages == 500, what="500 queued messages")


def test_producer_that_has_not_published_yet_reconnects_after_a_forced_close(
    topology: Settings, admin: BrokerAdmin
) -> None:
    require_rabbitmqctl()
    name = f"paymq-test-producer-{uuid.uuid4().hex[:8]}"  # closes nobody else's connection
    with Producer.from_settings(topology, name=name) as producer:
        # Given a connected producer
        # When the broker force-closes its connection (as a restart does)
        assert close_connections(name) == 1
        # Then its next publish goes out on a new connection and is confirmed
        _, message = producer.prepare(card_draft())
        producer.publish(message)
    queued = drain(admin, topology.broker.topology().work_queue("card"))
    assert [m.message_id for m in queued] == [message.message_id]


def test_producer_reconnects_after_the_broker_closes_its_connection(
    topology: Settings, admin: BrokerAdmin
) -> None:
    require_rabbitmqctl()
    settings = topology.replace(publish_attempts=2, publish_timeout_s=2.0)
    name = f"paymq-test-producer-{uuid.uuid4().hex[:8]}"
    with Producer.from_settings(settings, name=name) as producer:
        # Given a producer that has published over its connection
        _, before = producer.prepare(card_draft())
        producer.publish(before)
        # When the broker force-closes that connection (as a restart does)
        assert close_connections(name) == 1
        # Then the next publish goes out on a new connection and is confirmed
        _, after = producer.prepare(card_draft())
        producer.publish(after)
    queued = drain(admin, topology.broker.topology().work_queue("card"))
    # (a publish left unconfirmed by the close may be sent twice; never lost)
    assert {m.message_id for m in queued} == {before.message_id, after.message_id}


def test_order_file_with_one_bad_line_reports_it_and_publishes_the_rest(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a JSON Lines file whose second order has more decimals than USD allows
    orders = [
        {"channel": "card", "amount": "10.50", "currency": "USD", "token": "tok_visa"},
        {"channel": "card", "amount": "10.505", "currency": "USD", "token": "tok_visa"},
        {
            "channel": "digital_currency",
            "amount": "0.05",
            "currency": "ETH",
            "destination_address": "0x" + "11" * 20,
        },
    ]
    path = tmp_path / "orders.jsonl"
    suffix = uuid.uuid4().hex[:8]
    path.write_text(
        "".join(
            json.dumps({**o, "merchant_reference": f"file-{i}-{suffix}"}) + "\n"
            for i, o in enumerate(orders, start=1)
        )
        + "\n"  # a blank line is not an order
    )
    [error] = [line for line in read_orders(path) if line.draft is None]
    assert error.line_number == 2
    assert "more precision" in str(error.error)
    # When it is published
    code = publish_file(topology, path)
    # Then the bad line is reported by number and reason, and the other two are queued
    assert code == 1
    printed = " ".join(capsys.readouterr().out.split())
    assert "published 2, failed 1" in printed
    assert "line 2: USD allows 2 decimal places; 10.505 has more precision" in printed
    topo = topology.broker.topology()
    assert admin.stats(topo.work_queue("card")).messages == 1
    assert admin.stats(topo.work_queue("digital_currency")).messages == 1


def test_order_file_published_with_json_lists_every_order_with_its_payment_id(
    topology: Settings, admin: BrokerAdmin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file of three orders: one naming its payment id, one invalid, one by default ids
    suffix = uuid.uuid4().hex[:8]
    named = str(uuid.uuid4())
    orders = [
        {"amount": "10.50", "payment_id": named, "merchant_reference": f"a-{suffix}"},
        {"amount": "10.505", "merchant_reference": f"b-{suffix}"},
        {"amount_minor": 700, "merchant_reference": f"c-{suffix}", "idempotency_key": f"k{suffix}"},
    ]
    path = tmp_path / "orders.jsonl"
    common = {"channel": "card", "currency": "USD", "token": "tok_visa"}
    path.write_text("".join(json.dumps({**common, **order}) + "\n" for order in orders))

    # When it is published with --json
    code = publish_file(topology, path, as_json=True)

    # Then standard output holds one JSON object per order, in the file's order, and nothing else
    assert code == 1
    printed = capsys.readouterr()
    first, second, third = (json.loads(line) for line in printed.out.splitlines())
    assert (first["line"], first["published"], first["error"]) == (1, True, None)
    assert (first["payment_id"], first["merchant_reference"]) == (named, f"a-{suffix}")
    assert (first["idempotency_key"], first["channel"]) == (f"a-{suffix}", "card")
    assert (second["line"], second["published"], second["payment_id"]) == (2, False, None)
    assert "more precision" in second["error"]
    assert (third["line"], third["published"]) == (3, True)
    assert (third["merchant_reference"], third["idempotency_key"]) == (f"c-{suffix}", f"k{suffix}")
    # and the ids it printed are those of the payments queued, under the message ids it printed
    queued = drain(admin, topology.broker.topology().work_queue("card"))
    assert {(m.message_id, json.loads(m.body)["payment_id"]) for m in queued} == {
        (first["message_id"], first["payment_id"]),
        (third["message_id"], third["payment_id"]),
    }
    # while the summary, for a person, went to standard error
    assert "published 2, failed 1" in printed.err

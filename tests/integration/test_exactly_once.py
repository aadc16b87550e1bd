"""Exactly one effect per payment through duplicates, concurrency, unknown outcomes and replays:
the store's claim, its stored result, and the reconciler."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.amqp.admin import BrokerAdmin
from common.amqp.publisher import ThreadedPublisher
from common.details import DigitalCurrencyDetails
from common.keygen import generate_key
from common.keyring import KeyRole
from common.money import Money
from common.settings import Settings
from common.signing import Signer
from common.subscriber import ResultStream
from producer.encode import Draft
from producer.producer import Producer, ProducerOptions
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import (
    card_draft,
    cli_env,
    collect_events,
    collect_results,
    reconciling,
    run_cli,
    wait_until,
)
from tests.stores import postgres_engine
from workers.reconciler_thread import ReconcilerThread
from workers.session import session_options

pytestmark = pytest.mark.integration


@pytest.fixture
def reconciler(topology: Settings) -> Iterator[ReconcilerThread]:
    with reconciling(topology) as thread:
        yield thread


def test_a_payment_published_twice_and_delivered_to_two_workers_moves_money_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given two workers, and a provider slow enough for both deliveries to overlap
    start_worker("card", name="paymq-test-worker-a")
    start_worker("card", name="paymq-test-worker-b")
    control.set_latency(300)
    try:
        # When the same signed message is published twice
        request, message = producer.prepare(card_draft())
        producer.publish_many([message, message])
        events = collect_events(results, 2, timeout_s=20)
    finally:
        control.set_latency(0)
    # Then there is one effect, and both deliveries got the very same result event
    assert len(control.effects(str(request.payment_id))) == 1
    first, second = (e.message for e in events)
    assert first.body == second.body
    assert first.headers == second.headers
    assert [e.result.status for e in events if e.result] == ["succeeded", "succeeded"]


def test_the_same_idempotency_key_for_another_payment_is_rejected_as_a_conflict(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    start_worker("card")
    first = card_draft()
    second = dataclasses.replace(card_draft(amount="99.00"), idempotency_key=first.idempotency_key)
    request_1, message_1 = producer.prepare(first)
    producer.publish(message_1)
    [done] = collect_events(results, 1)
    request_2, message_2 = producer.prepare(second)
    producer.publish(message_2)
    [conflict] = collect_events(results, 1)
    assert done.result is not None
    assert done.result.status == "succeeded"
    assert conflict.result is not None
    assert (conflict.result.status, conflict.result.code) == ("rejected", "idempotency_conflict")
    assert len(control.effects(str(request_1.payment_id))) == 1
    assert control.effects(str(request_2.payment_id)) == []


def test_an_in_doubt_payment_is_settled_by_the_reconciler_from_the_providers_records(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    reconciler: ReconcilerThread,
) -> None:
    # Given a provider that charges and then answers 500, and one attempt per payment
    start_worker("card", settings=topology.replace(max_attempts=1))
    request, message = producer.prepare(card_draft())
    control.add_fault("error_after_effect", times=50, reference=str(request.payment_id))
    # When the payment is published, the worker gives up in doubt, never "failed"
    producer.publish(message)
    in_doubt, settled = collect_events(results, 2, timeout_s=30)
    assert in_doubt.result is not None
    assert in_doubt.result.status == "in_doubt"
    # Then the reconciler finds the charge and publishes the final result
    assert settled.result is not None
    assert (settled.result.status, settled.result.payment_id) == ("succeeded", request.payment_id)
    assert settled.result.provider_reference is not None
    assert len(control.effects(str(request.payment_id))) == 1


def test_a_retry_after_an_unknown_outcome_finds_the_charge_instead_of_charging_again(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given a provider that charges and then answers 500, every time it is asked to charge
    start_worker("card")
    request, message = producer.prepare(card_draft())
    control.add_fault("error_after_effect", times=50, reference=str(request.payment_id))
    # When the payment is published
    producer.publish(message)
    [result] = collect_results(results, 1, timeout_s=20)
    # Then the second attempt asked the provider by our reference, found the charge, and sent
    # nothing: one effect, and the fault that every charge request would meet went unused
    assert (result.status, result.attempts) == ("succeeded", 2)
    assert len(control.effects(str(request.payment_id))) == 1
    [rule] = [f for f in control.faults() if f["reference"] == str(request.payment_id)]
    assert rule["remaining"] == 49


def test_a_pending_payout_is_completed_once_it_settles(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    reconciler: ReconcilerThread,
) -> None:
    start_worker("digital_currency")
    payout = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x000000000000000000000000000000000000bEEF",
    )
    draft = Draft(
        amount=Money.from_major("0.5", "ETH"),
        merchant_reference="payout-pending",
        idempotency_key="payout-pending",
        payout=payout,
    )
    _, message = producer.prepare(draft)
    producer.publish(message)
    pending, settled = collect_events(results, 2, timeout_s=30)
    assert [e.result.status for e in (pending, settled) if e.result] == ["pending", "succeeded"]


def test_replaying_a_dead_letter_after_trusting_its_key_executes_it_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    # Given a payment signed by a key the worker does not trust yet: rejected, dead-lettered
    stranger_dir = tmp_path / "stranger"
    generate_key(
        stranger_dir,
        key_id="stranger-1",
        owner="stranger",
        role=KeyRole.PRODUCER,
        channels=("card",),
    )
    options = ProducerOptions(
        topology=topology.broker.topology(),
        request_ttl_s=topology.messages.request_ttl_s,
        publish_timeout_s=topology.broker.publish_timeout_s,
        publish_attempts=topology.broker.publish_attempts,
    )
    publisher = ThreadedPublisher(session_options(topology, "paymq-test-stranger"))
    with Producer(publisher, Signer.load(stranger_dir, "stranger-1"), options) as producer:
        request, message = producer.prepare(card_draft())
        producer.publish(message)
    worker = start_worker("card")
    [rejected] = collect_events(results, 1)
    assert rejected.result is not None
    assert rejected.result.code == "unknown_key"
    worker.stop()
    # When an operator trusts the key and replays the dead letter
    (keys_dir / "trusted" / "stranger-1.json").write_bytes(
        (stranger_dir / "trusted" / "stranger-1.json").read_bytes()
    )
    try:
        start_worker("card")
        env = cli_env(
            PAYMQ_AMQP_URL=topology.broker.amqp_url,
            PAYMQ_TOPOLOGY_PREFIX=topology.broker.topology_prefix,
            PAYMQ_KEYS_DIR=str(keys_dir),
        )
        listed = run_cli("dlq", "list", "--json", env=env, cwd=tmp_path)
        assert message.message_id in listed.stdout
        replayed = run_cli("dlq", "replay", message.message_id, env=env, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        [paid] = collect_events(results, 1)
        # Then it is executed, once, and the dead-letter queue no longer holds it
        assert paid.result is not None
        assert paid.result.status == "succeeded"
        assert len(control.effects(str(request.payment_id))) == 1
        queue = topology.broker.topology().dead_letter_queue
        wait_until(lambda: admin.stats(queue).messages == 0, what="an empty dead-letter queue")
        # and replaying a message whose payment is done only repeats its result
        status = run_cli(
            "status",
            str(request.payment_id),
            "--json",
            env=env | {"PAYMQ_DATABASE_URL": topology.store.database_url.get_secret_value()},
            cwd=tmp_path,
        )
        assert '"state": "succeeded"' in status.stdout, status.stdout + status.stderr
    finally:
        (keys_dir / "trusted" / "stranger-1.json").unlink()


def test_two_workers_sharing_a_postgresql_store_pay_a_duplicated_payment_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
) -> None:
    # Given two workers whose store is one PostgreSQL database, as on two hosts
    with postgres_engine() as engine:
        url = engine.url.render_as_string(hide_password=False)
        shared = topology.replace(database_url=url)
        workers = [
            start_worker("card", shared, name="paymq-test-pg-a"),
            start_worker("card", shared, name="paymq-test-pg-b"),
        ]
        control.set_latency(300)
        try:
            # When one payment is published three times
            request, message = producer.prepare(card_draft())
            producer.publish_many([message, message, message])
            events = collect_events(results, 3, timeout_s=30)
        finally:
            control.set_latency(0)
            for worker in workers:  # before their database is dropped
                worker.stop()
        # Then the provider moved money once and every copy of the result is the same event
        assert len(control.effects(str(request.payment_id))) == 1
        assert len({e.message.body for e in events}) == 1


def test_a_message_returned_past_the_delivery_limit_is_dead_lettered_with_the_brokers_reason(
    settings: Settings, admin: BrokerAdmin, keys_dir: Path, tmp_path: Path
) -> None:
    # Given work queues that allow two redeliveries, and a payment in the card queue
    limited = settings.replace(
        delivery_limit=2, topology_prefix=f"{settings.broker.topology_prefix}-limit"
    )
    topology = limited.broker.topology()
    admin.declare(topology)
    try:
        with Producer.from_settings(limited, name="paymq-test-producer") as producer:
            _request, message = producer.prepare(card_draft())
            producer.publish(message)
        # When every consumer that takes it dies before acking (a poison message)
        queue = topology.work_queue("card")
        returned = 0
        while (taken := admin.get(queue, ack=False)) is not None:
            assert taken.message_id == message.message_id
            returned += 1
            assert returned <= 10, "the queue never dead-lettered the message"
        # Then the queue dead-letters it after the limit, and `paymq dlq list` says why
        assert returned == 3  # the first delivery and two redeliveries
        env = cli_env(
            PAYMQ_AMQP_URL=limited.broker.amqp_url,
            PAYMQ_TOPOLOGY_PREFIX=limited.broker.topology_prefix,
            PAYMQ_KEYS_DIR=str(keys_dir),
        )
        listed = wait_until(
            lambda: (
                (out := run_cli("dlq", "list", "--json", env=env, cwd=tmp_path).stdout)
                and message.message_id in out
                and out
            ),
            what="the message in the dead-letter queue",
        )
        [entry] = [json.loads(line) for line in listed.splitlines()]
        assert entry["message_id"] == message.message_id
        assert entry["code"] == "delivery_limit"
        # And `paymq dlq replay --code` selects it by that same code, back to its work queue
        replayed = run_cli("dlq", "replay", "--code", "delivery_limit", env=env, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "1 replayed" in replayed.stdout
        back = wait_until(lambda: admin.get(queue, ack=True), what="the replayed message")
        assert back.message_id == message.message_id
    finally:
        admin.delete(topology)

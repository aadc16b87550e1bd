"""`paymq webhooks`: result events on the real broker, delivery rows in the real store (SQLite and
PostgreSQL), POSTed over real HTTP to a local receiver that fails when told to."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from common.amqp.admin import BrokerAdmin
from common.clock import SystemClock
from common.envelope import InboundMessage, OutboundMessage
from common.keygen import generate_key
from common.keyring import Keyring, KeyRole
from common.models import PaymentResult, PaymentStatus
from common.settings import Settings
from common.signing import Signer
from common.subscriber import ResultVerifier
from common.topology import QueueSpec
from common.webhooks import new_webhook_secret, verify_webhook
from producer.producer import Producer
from store.records import StoredResult
from store.submissions import Submission, Submissions
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import card_draft, http_server, wait_until
from tests.integration.observed import Metrics, running
from webhooks.addresses import AddressPolicy
from webhooks.deliveries import NewDelivery, WebhookDeliveries
from webhooks.endpoints import Endpoint, Endpoints, add_endpoint
from webhooks.intake import Intake
from webhooks.sender import AttemptOutcome, AttemptResult, Sender
from webhooks.service import WebhookService, build_service
from webhooks.transport import AddressGuard
from workers.results import sign_result

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at_s: float


@dataclass
class Receiver:
    """Answers 500 to the first `fail_first[path]` requests of each event on a path, then 200."""

    url: str
    fail_first: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def of_event(self, path: str, event_id: str) -> list[Received]:
        return [r for r in self.on(path) if r.headers["webhook-id"] == event_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                seen = [
                    r
                    for r in state.received
                    if r.path == self.path and r.headers["webhook-id"] == headers["webhook-id"]
                ]
                state.received.append(Received(self.path, headers, body, time.time()))
            failing = len(seen) < state.fail_first.get(self.path, 0)
            self.send_response(500 if failing else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state


@pytest.fixture
def hook_settings(topology: Settings, store_engine: Engine, tmp_path: Path) -> Settings:
    return topology.replace(
        database_url=store_engine.url.render_as_string(hide_password=False),
        webhook_endpoints_file=tmp_path / "webhooks.json",
        webhook_retry_schedule_s=(0.05, 0.1, 0.2),
        webhook_poll_interval_s=0.05,
        webhook_connect_timeout_s=1.0,
        webhook_read_timeout_s=2.0,
        webhook_lease_s=5.0,
        # The receivers here are on 127.0.0.1, which the sender refuses without this.
        webhook_allow_private_networks=True,
    )


@dataclass
class Running:
    service: WebhookService
    thread: threading.Thread

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(20)
        assert not self.thread.is_alive(), "webhooks did not stop"


@pytest.fixture
def start_webhooks(hook_settings: Settings) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(settings: Settings | None = None, owner: str | None = None) -> Running:
        service = build_service(settings or hook_settings, owner=owner)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        running.append(Running(service, thread))
        # Events are kept from the moment the service has declared its queue.
        wait_until(service.declared.is_set, what="the webhooks queue declared")
        return running[-1]

    yield start
    for each in running:
        if each.thread.is_alive():
            each.stop()
        each.service.deliveries.engine.dispose()
    with BrokerAdmin(hook_settings.broker.amqp_url) as admin:
        admin.delete_queue(hook_settings.broker.topology().webhooks_queue)


@pytest.fixture
def deliveries(store_engine: Engine) -> WebhookDeliveries:
    return WebhookDeliveries(store_engine, SystemClock(), owner="test", lease_ms=0)


def endpoint(settings: Settings, receiver: Receiver, name: str, **filters: list[str]) -> Endpoint:
    path = settings.webhook_endpoints_path
    return add_endpoint(
        path,
        f"{receiver.url}/{name}",
        endpoint_id=name,
        allow_private_networks=settings.webhooks.webhook_allow_private_networks,
        **filters,  # type: ignore[arg-type]
    )


def result_event(
    settings: Settings,
    *,
    channel: str = "card",
    status: PaymentStatus = PaymentStatus.SUCCEEDED,
    signer: Signer | None = None,
) -> tuple[PaymentResult, OutboundMessage]:
    now = datetime.fromtimestamp(int(time.time()), UTC)
    result = PaymentResult(
        event_id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        request_message_id=f"m-{uuid.uuid4().hex[:8]}",
        idempotency_key="order-1",
        merchant_reference="order-1",
        channel=channel,
        status=status,
        amount=None,
        attempts=1,
        payment_created_at=now,
        occurred_at=now,
    )
    signer = signer or Signer.load(settings.keys.keys_dir, settings.keys.worker_key_id)
    return result, sign_result(result, signer, settings.broker.topology())


def publish(settings: Settings, *messages: OutboundMessage) -> None:
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        for message in messages:
            admin.publish(message)


def delivered(deliveries: WebhookDeliveries, event_id: str, endpoint_id: str) -> bool:
    row = deliveries.get(event_id, endpoint_id)
    return row is not None and row["state"] == "delivered"


# --- end to end ---------------------------------------------------------------------------------


def test_paid_payments_results_reach_the_endpoint_signed_after_failed_attempts(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    receiver: Receiver,
    deliveries: WebhookDeliveries,
) -> None:
    # Given an endpoint that answers 500 twice for every event, then 200
    shop = endpoint(hook_settings, receiver, "shop")
    receiver.fail_first["/shop"] = 2
    start_webhooks()
    start_worker("card", hook_settings)
    # When three payments are paid
    requests = []
    for draft in (card_draft("tok_visa"), card_draft("tok_visa"), card_draft("tok_chargeDeclined")):
        request, message = producer.prepare(draft)
        producer.publish(message)
        requests.append(request)
    # Then each payment's result is delivered, on the third attempt, at non-decreasing times
    wait_until(lambda: len({r.headers["webhook-id"] for r in receiver.on("/shop")}) == 3)
    events = {r.headers["webhook-id"] for r in receiver.on("/shop")}
    for event_id in events:
        wait_until(lambda e=event_id: delivered(deliveries, e, "shop"), what="delivered")
        attempts = receiver.of_event("/shop", event_id)
        assert len(attempts) == 3
        assert [a.at_s for a in attempts] == sorted(a.at_s for a in attempts)
        assert {a.body for a in attempts} == {attempts[0].body}
        for attempt in attempts:
            assert attempt.headers["webhook-id"] == event_id
            assert attempt.headers["content-type"] == "application/json"
            assert attempt.headers["user-agent"].startswith("paymq-webhooks/")
            result = verify_webhook(shop.secret, attempt.headers, attempt.body)
            assert str(result.event_id) == event_id
        row = deliveries.get(event_id, "shop")
        assert row is not None
        assert (row["attempts"], row["last_error"]) == (3, "HTTP 500")
    paid = {str(r.payment_id) for r in requests}
    got = {
        str(verify_webhook(shop.secret, r.headers, r.body).payment_id) for r in receiver.on("/shop")
    }
    assert got == paid


def test_a_payment_the_api_took_and_a_worker_refused_reaches_the_endpoint_naming_it(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    start_worker: Callable[..., RunningWorker],
    receiver: Receiver,
    store_engine: Engine,
    tmp_path: Path,
) -> None:
    shop = endpoint(hook_settings, receiver, "shop")
    start_webhooks()
    start_worker("card", hook_settings)
    # Given a payment the HTTP API signed with a gateway key the workers do not trust (a
    # rotation done halfway) and stored as its submission, as the API does
    api_keys = tmp_path / "api-keys"
    generate_key(api_keys, key_id="gateway-new", role=KeyRole.GATEWAY, channels=("card",))
    api = hook_settings.replace(keys_dir=api_keys, gateway_key_id="gateway-new")
    with Producer.from_settings(api, name="paymq-test-api", gateway=True) as gateway:
        request, message = gateway.prepare(card_draft())
        submission = Submission(
            api_key_id="shop",
            idempotency_key="k-1",
            body_sha256="0" * 64,
            payment_id=str(request.payment_id),
            channel="card",
            message=StoredResult.of(message),
            merchant_reference=request.merchant_reference,
            scope=gateway.owner,
        )
        Submissions(store_engine, SystemClock()).add(submission)
        # When it is published, and a worker refuses it
        gateway.publish(message)
    # Then the endpoint is told the payment was rejected, naming it and its reference
    [attempt] = wait_until(lambda: receiver.on("/shop"), timeout_s=30, what="the webhook")
    result = verify_webhook(shop.secret, attempt.headers, attempt.body)
    assert (result.status, result.code) == ("rejected", "unknown_key")
    assert result.payment_id == request.payment_id
    assert result.merchant_reference == request.merchant_reference


# --- retries, giving up, redelivery -----------------------------------------------------------


def test_an_endpoint_that_always_fails_is_given_up_then_redelivered_on_request(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    receiver: Receiver,
    deliveries: WebhookDeliveries,
) -> None:
    # Given an endpoint that always answers 500
    endpoint(hook_settings, receiver, "down")
    receiver.fail_first["/down"] = 1_000
    start_webhooks()
    # When a result is published
    result, message = result_event(hook_settings)
    event_id = str(result.event_id)
    publish(hook_settings, message)
    # Then after 1 + 3 attempts (the schedule has three delays) the delivery is failed
    wait_until(lambda: (deliveries.get(event_id, "down") or {}).get("state") == "failed")
    assert len(receiver.of_event("/down", event_id)) == 4
    assert deliveries.get(event_id, "down")["last_error"] == "HTTP 500"  # type: ignore[index]
    # When the endpoint is back and the delivery is redelivered
    receiver.fail_first["/down"] = 0
    assert deliveries.redeliver(failed=True) == 1
    # Then it is sent again and delivered, with the same webhook-id
    wait_until(lambda: delivered(deliveries, event_id, "down"), what="redelivered")
    assert len(receiver.of_event("/down", event_id)) == 5


def test_the_same_event_twice_makes_one_delivery(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    receiver: Receiver,
    deliveries: WebhookDeliveries,
    admin: BrokerAdmin,
) -> None:
    # Given an endpoint
    endpoint(hook_settings, receiver, "shop")
    start_webhooks()
    # When one result event is published twice (a worker repeating it after a redelivery)
    result, message = result_event(hook_settings)
    publish(hook_settings, message, message)
    # Then the queue empties, and the endpoint got it once
    queue = hook_settings.broker.topology().webhooks_queue
    wait_until(lambda: delivered(deliveries, str(result.event_id), "shop"))
    wait_until(lambda: admin.stats(queue).messages == 0, what="an empty webhooks queue")
    assert len(receiver.of_event("/shop", str(result.event_id))) == 1
    assert len(deliveries.of_event(str(result.event_id))) == 1


def test_filters_send_each_endpoint_only_the_channels_and_statuses_it_asked_for(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    receiver: Receiver,
    deliveries: WebhookDeliveries,
) -> None:
    # Given one endpoint for card declines, one for everything
    endpoint(hook_settings, receiver, "declines", channels=["card"], statuses=["declined"])
    endpoint(hook_settings, receiver, "all")
    start_webhooks()
    # When a card decline, a card success and a payout decline are published
    events = [
        result_event(hook_settings, status=PaymentStatus.DECLINED),
        result_event(hook_settings, status=PaymentStatus.SUCCEEDED),
        result_event(hook_settings, channel="digital_currency", status=PaymentStatus.DECLINED),
    ]
    publish(hook_settings, *(message for _, message in events))
    # Then "all" gets all three and "declines" only the card decline
    ids = [str(result.event_id) for result, _ in events]
    for event_id in ids:
        wait_until(lambda e=event_id: delivered(deliveries, e, "all"), what="delivered to all")
    wait_until(lambda: delivered(deliveries, ids[0], "declines"))
    assert [r.headers["webhook-id"] for r in receiver.on("/declines")] == [ids[0]]
    assert deliveries.get(ids[1], "declines") is None
    assert deliveries.get(ids[2], "declines") is None


# --- untrusted events -----------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["untrusted-key", "tampered-body"])
def test_a_forged_result_event_is_never_posted_and_is_dead_lettered(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    receiver: Receiver,
    deliveries: WebhookDeliveries,
    admin: BrokerAdmin,
    forgery: str,
) -> None:
    # Given an endpoint
    endpoint(hook_settings, receiver, "shop")
    start_webhooks()
    # When a forged result event is published, then a genuine one
    if forgery == "untrusted-key":
        impostor = Signer(hook_settings.keys.worker_key_id, Ed25519PrivateKey.generate())
        forged_result, forged = result_event(hook_settings, signer=impostor)
    else:
        forged_result, genuine_copy = result_event(hook_settings)
        body = genuine_copy.body.replace(b'"order-1"', b'"order-2"')
        forged = dataclasses.replace(genuine_copy, body=body)
    genuine_result, genuine = result_event(hook_settings)
    publish(hook_settings, forged, genuine)
    # Then the genuine one is delivered, the forged one is in the dead-letter queue with why
    wait_until(lambda: delivered(deliveries, str(genuine_result.event_id), "shop"))
    dead_letter = hook_settings.broker.topology().dead_letter_queue
    [dead] = wait_until(lambda: admin.drain(dead_letter), what="a dead letter")
    assert dead.message_id == str(forged_result.event_id)
    assert dead.headers["paymq-dead-letter-code"] == "signature_invalid"
    # and it was never POSTed nor stored
    assert receiver.of_event("/shop", str(forged_result.event_id)) == []
    assert deliveries.of_event(str(forged_result.event_id)) == []


# --- two senders ----------------------------------------------------------------------------------


def test_two_webhooks_processes_never_send_one_delivery_at_the_same_time(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    receiver: Receiver,
    deliveries: WebhookDeliveries,
) -> None:
    # Given two webhooks processes on one store and an endpoint that fails once per event
    endpoint(hook_settings, receiver, "shop")
    receiver.fail_first["/shop"] = 1
    start_webhooks(owner="one")
    start_webhooks(owner="two")
    # When many results are published
    events = [result_event(hook_settings) for _ in range(20)]
    publish(hook_settings, *(message for _, message in events))
    # Then every event is delivered with exactly two attempts: none sent twice concurrently
    for result, _ in events:
        wait_until(lambda e=str(result.event_id): delivered(deliveries, e, "shop"))
        assert len(receiver.of_event("/shop", str(result.event_id))) == 2


# --- the process, as an operator runs it ------------------------------------------------------


def test_the_webhooks_process_delivers_counts_attempts_and_logs_json(
    hook_settings: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    # Given `paymq webhooks run` with an endpoint that answers 500 once per event, then 200
    shop = endpoint(hook_settings, receiver, "shop")
    receiver.fail_first["/shop"] = 1
    start_worker("card", hook_settings)
    try:
        with running(hook_settings, tmp_path, "webhooks", "run") as webhooks:
            url = webhooks.metrics_url()  # announced once its queue is bound
            # When a payment is paid
            request, message = producer.prepare(card_draft())
            producer.publish(message)
            # Then its result reaches the endpoint, signed, on the second attempt
            wait_until(lambda: len(receiver.on("/shop")) == 2, what="two attempts")
            last = receiver.on("/shop")[-1]
            assert verify_webhook(shop.secret, last.headers, last.body).payment_id == (
                request.payment_id
            )

            # And the process's metrics count both attempts and the delivered row
            def counted() -> Metrics | None:
                metrics = webhooks.scrape()
                delivered = metrics("paymq_webhook_deliveries", endpoint="shop", state="delivered")
                return metrics if delivered == 1 else None

            metrics = wait_until(counted, timeout_s=20, what="the delivery to be counted")
            attempts = "paymq_webhook_attempt_seconds_count"
            assert metrics(attempts, endpoint="shop", result="refused") == 1
            assert metrics(attempts, endpoint="shop", result="delivered") == 1
            assert metrics("paymq_webhook_events_total", outcome="stored") == 1
            assert url.endswith("/metrics")
    finally:
        with BrokerAdmin(hook_settings.broker.amqp_url) as admin:
            admin.delete_queue(hook_settings.broker.topology().webhooks_queue)

    # And its log lines are JSON; those about the payment name it and its result event
    about = [line for line in webhooks.lines() if line["payment_id"] == str(request.payment_id)]
    assert any("delivered" in line["message"] for line in about)
    event_id = last.headers["webhook-id"]
    assert {line["message_id"] for line in about} == {event_id}
    assert shop.secret not in webhooks.log.read_text()


def test_the_webhooks_process_announces_itself_only_once_its_queue_is_bound(
    hook_settings: Settings, admin: BrokerAdmin, tmp_path: Path
) -> None:
    # Given a webhooks queue already there with other arguments, which the process cannot
    # declare (and a queue not declared yet is one that result events miss)
    topology = hook_settings.broker.topology()
    admin.declare_queue(QueueSpec(topology.webhooks_queue), topology.webhooks_binding())
    try:
        # When `paymq webhooks run` starts
        with running(hook_settings, tmp_path, "webhooks", "run", exit_code=1) as webhooks:
            wait_until(
                lambda: (
                    webhooks.popen.poll() is not None or "metrics on" in webhooks.log.read_text()
                ),
                timeout_s=60,
                what="the process to exit or announce its metrics",
            )
            # Then it exits with the broker's refusal as a configuration error, never having
            # announced its metrics nor its start: whoever publishes once it sees those must
            # find the queue bound
            output = webhooks.log.read_text()
            assert "metrics on" not in output
            assert f"webhooks: queue {topology.webhooks_queue}" not in output
            assert "PRECONDITION_FAILED" in output
            assert "rabbitmqctl delete_queue" in output
    finally:
        admin.delete_queue(topology.webhooks_queue)


def test_a_backlog_of_one_busy_endpoint_never_hides_another_endpoint_s_delivery(
    deliveries: WebhookDeliveries,
) -> None:
    # Given 20 due deliveries to an endpoint already sending at its limit, and then one due
    # delivery to another endpoint
    backlog = [
        NewDelivery(f"event-{n}", "down", None, "card", "succeeded", b"{}") for n in range(20)
    ]
    deliveries.add(backlog)
    deliveries.add([NewDelivery("event-x", "up", None, "card", "succeeded", b"{}")])

    # When two threads are free and "down" already has its one delivery in flight
    claimed = deliveries.claim_due(2, per_endpoint=1, busy={"down": 1})

    # Then the other endpoint's delivery is taken, and none of the busy endpoint's
    assert [(c.event_id, c.endpoint_id) for c in claimed] == [("event-x", "up")]


def test_storing_deliveries_counts_only_the_new_ones(deliveries: WebhookDeliveries) -> None:
    # Given two deliveries of an event already stored
    first = [
        NewDelivery("event-1", endpoint, None, "card", "succeeded", b"{}") for endpoint in "ab"
    ]
    assert deliveries.add(first) == 2
    # When the event is taken again (a redelivery) with one more endpoint
    again = [*first, NewDelivery("event-1", "c", None, "card", "succeeded", b"{}")]
    # Then only the new one is counted, on both databases
    assert deliveries.add(again) == 1


def test_an_event_taken_in_is_logged_with_its_real_counts_in_good_grammar(
    hook_settings: Settings,
    deliveries: WebhookDeliveries,
    keyring: Keyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given one endpoint for every result, and a result event as the webhooks queue gives it
    hooks = Endpoints((Endpoint("one", "https://hooks.example/one", new_webhook_secret()),))
    intake = Intake(ResultVerifier(keyring), deliveries, lambda: hooks)
    _, event = result_event(hook_settings)
    received = InboundMessage(
        body=event.body,
        exchange=event.exchange,
        routing_key=event.routing_key,
        content_type=event.content_type,
        message_id=event.message_id,
        message_type=event.message_type,
        headers=dict(event.headers),
    )
    with caplog.at_level(logging.INFO, logger="paymq.webhooks"):
        # When it is taken in, then again (a redelivery)
        assert intake.take(received) == 1
        assert intake.take(received) == 0
    # Then each line counts what happened, on both databases
    lines = [r.getMessage() for r in caplog.records if r.name == "paymq.webhooks"]
    assert lines == [
        "card succeeded: 1 endpoint, 1 new delivery",
        "card succeeded: 1 endpoint, 0 new deliveries",
    ]


# --- addresses an endpoint may not have ---------------------------------------------------------


@dataclass
class Listener:
    """An HTTP receiver on 127.0.0.1 that counts the TCP connections it accepts."""

    port: int
    server: ThreadingHTTPServer

    @property
    def connections(self) -> int:
        return self.server.accepted  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def listener() -> Iterator[Listener]:
    class Counting(ThreadingHTTPServer):
        accepted = 0

        def get_request(self) -> tuple[socket.socket, Any]:
            request = super().get_request()
            self.accepted += 1
            return request

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = Counting(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(server.server_address[1], server)
    finally:
        server.shutdown()
        server.server_close()


def sender(guard: AddressGuard) -> Sender:
    return Sender(
        SystemClock(), user_agent="test", connect_timeout_s=2.0, read_timeout_s=2.0, guard=guard
    )


def attempt(guard: AddressGuard, url: str) -> AttemptOutcome:
    shop = Endpoint("shop", url, new_webhook_secret())
    return sender(guard).attempt(shop, "event-1", b"{}")


#: Spellings of a loopback host; getaddrinfo turns each into 127.0.0.1 (or ::1, ::ffff:...).
LOOPBACK_HOSTS = (
    "127.0.0.1",
    "localhost",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_a_loopback_endpoint_in_any_spelling_is_refused_and_never_connected(
    listener: Listener, host: str
) -> None:
    # Given a receiver listening on 127.0.0.1 and the default address policy
    url = f"http://{host}:{listener.port}/hooks"
    # When a webhook is sent to it under any spelling of its address
    outcome = attempt(AddressGuard(AddressPolicy()), url)
    # Then the attempt is refused for its address, and no connection reached the receiver
    assert outcome.result is AttemptResult.ADDRESS_NOT_ALLOWED
    assert outcome.error == "address not allowed: loopback"
    assert listener.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1"])
def test_a_loopback_endpoint_is_delivered_with_the_private_networks_opt_in(
    listener: Listener, host: str
) -> None:
    # Given the same receiver, and the opt-in for private networks
    guard = AddressGuard(AddressPolicy(allow_private_networks=True))
    # When a webhook is sent to it
    outcome = attempt(guard, f"http://{host}:{listener.port}/hooks")
    # Then it arrives
    assert outcome.result is AttemptResult.DELIVERED
    assert listener.connections == 1


@dataclass
class ScriptedResolver:
    """Our resolver seam, answering each lookup with the next list of addresses."""

    answers: list[list[str]]
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[len(self.asked) - 1]


def test_a_name_that_rebinds_to_a_refused_address_is_refused_at_the_next_attempt(
    listener: Listener,
) -> None:
    # Given a name that resolves to the (allowed) receiver, then to the metadata address
    resolver = ScriptedResolver([["127.0.0.1"], ["169.254.169.254"]])
    guard = AddressGuard(AddressPolicy(allow_private_networks=True), resolver)
    shop = Endpoint("shop", f"http://shop.test:{listener.port}/hooks", new_webhook_secret())
    one = sender(guard)
    # When one webhook is sent, then another after the name changed
    first = one.attempt(shop, "event-1", b"{}")
    second = one.attempt(shop, "event-2", b"{}")
    # Then the first is delivered and the second refused: the name is looked up once per
    # connection, and the address judged is the one connected to
    assert (first.result, second.result) == (
        AttemptResult.DELIVERED,
        AttemptResult.ADDRESS_NOT_ALLOWED,
    )
    assert second.error == "address not allowed: link-local"
    assert resolver.asked == ["shop.test", "shop.test"]
    assert listener.connections == 1


def test_refused_answers_of_a_name_are_skipped_and_an_allowed_one_is_connected(
    listener: Listener,
) -> None:
    # Given a name whose first answer is the metadata address and whose second is allowed
    resolver = ScriptedResolver([["169.254.169.254", "127.0.0.1"]])
    guard = AddressGuard(AddressPolicy(allow_private_networks=True), resolver)
    # When a webhook is sent to it
    outcome = attempt(guard, f"http://shop.test:{listener.port}/hooks")
    # Then it goes to the allowed address only, after one lookup
    assert outcome.result is AttemptResult.DELIVERED
    assert resolver.asked == ["shop.test"]
    assert listener.connections == 1


def test_the_webhooks_service_refuses_a_name_that_resolves_to_loopback_until_it_gives_up(
    hook_settings: Settings,
    start_webhooks: Callable[..., Running],
    listener: Listener,
    deliveries: WebhookDeliveries,
) -> None:
    # Given the default policy and an endpoint added by name (names are judged when sent)
    strict = hook_settings.replace(webhook_allow_private_networks=False)
    url = f"http://localhost:{listener.port}/hooks"
    add_endpoint(strict.webhook_endpoints_path, url, endpoint_id="local")
    start_webhooks(strict)
    # When a result is published
    result, message = result_event(strict)
    publish(strict, message)
    # Then every attempt is refused for its address and the delivery is given up, the
    # receiver never having seen a connection
    event_id = str(result.event_id)
    wait_until(lambda: (deliveries.get(event_id, "local") or {}).get("state") == "failed")
    row = deliveries.get(event_id, "local")
    assert row is not None
    assert (row["attempts"], row["last_error"]) == (4, "address not allowed: loopback")
    assert listener.connections == 0

"""Proof at rest: after real payments with card numbers, no card number and no CVC is anywhere
the system keeps data.

Real processes on a private RabbitMQ node: the sandbox provider, one card worker, the webhooks
sender (POSTing to a receiver here) and the HTTP API, the store on SQLite, every log in a file.
Sealed cards with the networks' test numbers and a CVC are paid; card numbers (whole, spaced,
dashed) are put in every free-text field of signed requests published raw (below the producer
library's refusal), the AMQP message id included (the producer chooses it, the signature covers
it, and results echo it), and of HTTP requests. Then everything stops, the node too, so that it has
written what it keeps, and a scanner (tests/faults/pan_scan.py) reads: every file of the node's
data directory and its logs, the store's files and rows, every process's log, the dead-letter
and notifications queues' messages (headers and bodies), the result events as a subscriber got
them, the webhook bodies, and the API's answers.

A request published with a card number in clear rests in the broker's log as it was sent: the
broker writes it before any worker can refuse it (only the producer library and the API refuse
before publishing). One copy of each such request, exactly as published, is therefore set apart
in the node's files and counted; any other copy is a hit.

The scanner is shown to see: a canary card number published to a queue of the node is found in
its data files, and one planted in a scratch copy of that directory is found there.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from rich.console import Console

from common.amqp.admin import BrokerAdmin
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_DEAD_LETTER_CODE,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    InboundMessage,
    OutboundMessage,
    sign_message,
)
from common.errors import SignatureInvalid
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.models import PaymentStatus
from common.money import Money
from common.sealing import CardData
from common.settings import Settings
from common.signing import REQUEST_TYPE, SignedFields, Signer
from common.subscriber import ResultEvent, ResultStream, ResultVerifier
from common.topology import BindingSpec, QueueSpec
from paymq_tools.chaos.crew import kill_group
from paymq_tools.chaos.node import PrivateBroker
from paymq_tools.chaos.nodectl import rabbitmq_installed
from paymq_tools.chaos.services import Services
from paymq_tools.processes import (
    Fleet,
    child_environment,
    free_port,
    settings_env,
    wait_for_consumers,
    wait_for_http,
)
from producer.api.keys import add_key
from producer.encode import Draft
from producer.producer import Producer
from tests.faults.pan_scan import Hit, Secrets, Tally, grouped, scan_blobs, scan_bytes, scan_tree
from tests.faults.pan_scan import table as scan_table
from tests.integration.helpers import card_draft, http_server, resign, wait_until
from webhooks.endpoints import add_endpoint

console = Console(stderr=True, highlight=False)

#: The networks' published test card numbers (Visa, Mastercard, Amex, Discover, Visa debit).
PANS = (
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4000056655665556",
)
CVC = "737"
#: Only ever a message id: a text of its own, so its one copy as published is told apart.
MESSAGE_ID_PAN = "5105105105105100"
#: Published to a queue of the node on purpose, to show the scanner reads the node's files.
CANARY_PAN = "6011000990139424"
FORMS: dict[str, Callable[[str], str]] = {
    "whole": lambda pan: pan,
    "spaced": lambda pan: grouped(pan, " "),
    "dashed": lambda pan: grouped(pan, "-"),
}
#: Where a producer writes text of its own; every one must be refused with pan_in_clear.
FIELDS = (
    "merchant_reference",
    "metadata key",
    "metadata value",
    "idempotency_key",
    "details.source.token",
    "details.source.kid",
    "message_id",
)


# --- the system ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """Every webhook POST's headers and body, answered 200."""

    url: str = ""
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_ids(self) -> set[str]:
        with self.lock:
            return {event_id for event_id, _ in self.posts}


@dataclass
class System:
    node: PrivateBroker
    settings: Settings
    work_dir: Path
    fleet: Fleet
    api_url: str
    api_key: str
    receiver: Receiver
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.fleet.log_dir

    def stop(self) -> None:
        """SIGTERM: workers drain, the store is closed, logs are flushed."""
        if not self.exit_codes:
            self.exit_codes = self.fleet.stop(timeout_s=20)


@pytest.fixture
def node() -> Iterator[PrivateBroker]:
    """A node of this test's own (not the session's): it is stopped before its files are read."""
    if not rabbitmq_installed():
        if os.environ.get("CI"):
            pytest.fail("CI is set and rabbitmq-server is not installed", pytrace=False)
        pytest.skip("rabbitmq-server is not installed")
    with PrivateBroker(say=console.print) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = repr(sorted(self.headers.items())).encode()
            with state.lock:
                state.posts.append((self.headers["webhook-id"], headers + b"\n" + body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state


@pytest.fixture
def system(node: PrivateBroker, receiver: Receiver, tmp_path: Path) -> Iterator[System]:
    work_dir = tmp_path / "run"
    (work_dir / "logs").mkdir(parents=True)
    settings = Settings(
        _env_file=None,
        amqp_url=node.url,
        topology_prefix=f"pans-{uuid.uuid4().hex[:8]}",
        keys_dir=work_dir / "keys",
        sealing_key_id="card-seal-1",
        provider_url=f"http://127.0.0.1:{free_port()}",
        database_url=f"sqlite:///{work_dir / 'paymq.db'}",
        retry_delays_ms=(200, 500, 1000),
        max_attempts=3,
        shutdown_grace_s=5.0,
        # The most a process ever writes: a card number must not reach even a debug line.
        log_level="DEBUG",
        log_format="json",
        api_port=free_port(),
        api_keys_file=work_dir / "api-keys.json",
        webhook_endpoints_file=work_dir / "webhooks.json",
        webhook_allow_private_networks=True,  # the receiver is on 127.0.0.1
        webhook_retry_schedule_s=(0.2, 0.5),
        webhook_poll_interval_s=0.2,
    )
    init_keys(
        settings.keys.keys_dir,
        producer_key_id=settings.keys.producer_key_id,
        worker_key_id=settings.keys.worker_key_id,
        sealing_key_id="card-seal-1",
    )
    api_key = add_key(settings.api_keys_path, "shop", ["card"])
    add_endpoint(
        settings.webhook_endpoints_path,
        f"{receiver.url}/hooks",
        endpoint_id="shop",
        allow_private_networks=True,
    )
    topology = settings.broker.topology()
    with BrokerAdmin(node.url) as admin:
        admin.declare(topology)
        # Declared before the sender starts, so no result is published before it exists.
        admin.declare_queue(topology.webhooks_queue_spec(), topology.webhooks_binding())
    fleet = Fleet(work_dir / "logs", settings_env(settings, child_environment()))
    running = System(
        node,
        settings,
        work_dir,
        fleet,
        f"http://127.0.0.1:{settings.api.api_port}",
        api_key,
        receiver,
    )
    try:
        services = Services(fleet, settings)
        services.start_sandbox(latency_ms=0)
        services.prepare_store()
        fleet.start("worker-card", "worker", "card")
        fleet.start("webhooks", "webhooks", "run")
        fleet.start("api", "api", "serve")
        wait_for_consumers(
            node.url, {topology.work_queue("card"): 1, topology.webhooks_queue: 1}, fleet
        )
        wait_for_http(f"{running.api_url}/readyz", fleet)
        yield running
    finally:
        running.stop()
        for process in fleet.processes.values():
            kill_group(process)


# --- what is sent -------------------------------------------------------------------------------


def sealed_draft(pan: str) -> Draft:
    reference = f"order-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money(amount_minor=1999, currency="EUR"),
        merchant_reference=reference,
        idempotency_key=reference,
        card=CardData(number=pan, exp_month=12, exp_year=2031, cvc=CVC),
        metadata={"cart": "42"},
    )


def with_pan(body: dict[str, Any], where: str, text: str) -> dict[str, Any]:
    """The request body with `text` (a card number as written) in one free-text field."""
    changed = copy.deepcopy(body)
    source = changed["details"]["source"]
    if where == "merchant_reference":
        changed["merchant_reference"] = f"order {text}"
    elif where == "metadata key":
        changed["metadata"] = {text: "gift"}
    elif where == "metadata value":
        changed["metadata"] = {"note": text}
    elif where == "idempotency_key":
        changed["idempotency_key"] = text
    elif where == "details.source.token":
        source["token"] = f"tok_{text}"
    else:
        source["kid"] = text
    return changed


@dataclass(frozen=True)
class Attempt:
    """A signed request with a card number in clear, published below the producer's refusal."""

    where: str
    form: str
    message: OutboundMessage

    @property
    def payment_id(self) -> str:
        return str(json.loads(self.message.body)["payment_id"])

    def as_published(self) -> bytes:
        """The bytes holding the card number as the producer sent them."""
        if self.where == "message_id":
            return self.message.message_id.encode()
        return self.message.body


def attempts(producer: Producer, signer: Signer) -> list[Attempt]:
    made = []
    for index, (where, form) in enumerate(itertools.product(FIELDS, FORMS)):
        pan = PANS[index % len(PANS)]
        text = FORMS[form](pan)
        # A sealed card for the kid (the seal stays valid: the worker must refuse before it
        # opens anything), a token for the rest.
        draft = sealed_draft(pan) if where == "details.source.kid" else card_draft()
        _, clean = producer.prepare(draft)
        if where == "message_id":
            message_id = FORMS[form](MESSAGE_ID_PAN)
            made.append(Attempt(where, form, with_message_id(signer, clean, message_id)))
            continue
        body = with_pan(json.loads(clean.body), where, text)
        made.append(Attempt(where, form, resign(signer, clean, json.dumps(body).encode())))
    return made


def with_message_id(signer: Signer, clean: OutboundMessage, message_id: str) -> OutboundMessage:
    """The clean request under another message id: signed for it where a signature allows
    its characters (not spaces), else with the clean message's signature (refused as forged)."""
    headers = clean.headers
    try:
        fields = SignedFields(
            message_type=REQUEST_TYPE,
            key_id=str(headers[HEADER_KEY_ID]),
            route=str(headers[HEADER_ROUTE]),
            message_id=message_id,
            created_at_ms=int(headers[HEADER_CREATED_AT_MS]),
            expires_at_ms=int(headers[HEADER_EXPIRES_AT_MS]),
        )
    except SignatureInvalid:
        return dataclasses.replace(clean, message_id=message_id)
    return sign_message(
        signer, fields, clean.body, exchange=clean.exchange, routing_key=clean.routing_key
    )


def http_attempts(system: System) -> list[requests.Response]:
    """The same card numbers over HTTP: each answered 422, nothing taken."""
    pan = PANS[0]
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"merchant_reference": f"order {grouped(pan, ' ')}"}, "api-1"),
        ({"metadata": {"note": grouped(pan, "-")}}, "api-2"),
        ({"metadata": {pan: "gift"}}, "api-3"),
        ({"details": {"type": "card", "token": f"tok_{pan}"}}, "api-4"),
        ({}, f"key-{grouped(pan, '-')}"),
    ]
    clean = {
        "merchant_reference": "order-http",
        "amount": {"amount_minor": 1999, "currency": "EUR"},
        "details": {"type": "card", "token": "tok_visa"},
    }
    return [
        requests.post(
            f"{system.api_url}/payments",
            json=clean | change,
            headers={"Authorization": f"Bearer {system.api_key}", "Idempotency-Key": idem},
            timeout=30,
        )
        for change, idem in bodies
    ]


def publish_canary(system: System) -> None:
    """A card number the scanner must find in the node's files: proof that it can."""
    topology = system.settings.broker.topology()
    queue = f"{topology.prefix}.canary"
    with BrokerAdmin(system.node.url) as admin:
        admin.declare_queue(
            QueueSpec(queue, {"x-queue-type": "quorum"}),
            BindingSpec(queue, topology.requests_exchange, "canary"),
        )
        admin.publish(
            OutboundMessage(
                exchange=topology.requests_exchange,
                routing_key="canary",
                body=json.dumps({"note": grouped(CANARY_PAN, " ")}).encode(),
                message_id="canary",
                message_type="canary",
            )
        )


# --- what is read back --------------------------------------------------------------------------


def at_rest(url: str, queue: str) -> list[InboundMessage]:
    """Every message of `queue`, left in it (unacked, then requeued as the connection closes)."""
    seen = []
    with BrokerAdmin(url, name="paymq-test-inspect") as admin:
        for delivery in admin.deliveries(queue, prefetch=1000, inactivity_timeout_s=0.5):
            if delivery is None:
                break
            seen.append(delivery.message)
    return seen


def message_bytes(message: InboundMessage) -> bytes:
    """Properties, headers (a dead-letter reason is one) and body."""
    properties = (message.message_id, message.message_type, message.routing_key)
    return repr((properties, dict(message.headers))).encode() + b"\n" + message.body


def store_rows(database: Path) -> list[tuple[str, bytes]]:
    """Every row of every table, as text."""
    # sqlite3's own `with` ends a transaction, and leaves the connection open.
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            (f"{database.name}:{name}", repr(row).encode())
            for name in tables
            for row in db.execute(f'SELECT * FROM "{name}"')  # noqa: S608 - names from the schema
        ]


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.faults
@pytest.mark.timeout(180)
def test_no_card_number_or_cvc_is_left_at_rest_after_real_payments(system: System) -> None:
    settings, topology = system.settings, system.settings.broker.topology()
    signer = Signer.load(settings.keys.keys_dir, settings.keys.producer_key_id)
    verifier = ResultVerifier(Keyring.load(settings.keys.keys_dir / TRUSTED_DIR))
    with (
        ResultStream(settings.broker.amqp_url, topology, verifier) as stream,
        Producer.from_settings(settings, name="paymq-test-producer") as producer,
    ):
        # Given sealed card payments with the networks' test numbers and a CVC
        sealed = [producer.prepare(sealed_draft(pan)) for pan in PANS]
        outcomes = producer.publish_many([message for _, message in sealed])
        assert all(outcome.ok for outcome in outcomes)
        # and signed requests with a card number in each free-text field, published raw
        tried = attempts(producer, signer)
        with BrokerAdmin(settings.broker.amqp_url) as admin:
            for attempt in tried:
                admin.publish(attempt.message)
        # and the same over HTTP
        answers = http_attempts(system)
        # When every payment has its result, every webhook was delivered and the refused
        # messages are dead-lettered
        events = results_for(stream, len(sealed) + len(tried), timeout_s=40)
    paid, refused = assign([m for _, m in sealed], tried, events)
    settled(
        lambda: system.receiver.event_ids() >= {str(e.result.event_id) for e in events if e.result}
    )
    rejected = sum(1 for e in events if e.result and e.result.status is PaymentStatus.REJECTED)
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        settled(lambda: admin.stats(topology.dead_letter_queue).messages >= rejected)
    publish_canary(system)
    dead = at_rest(settings.broker.amqp_url, topology.dead_letter_queue)
    notified = at_rest(settings.broker.amqp_url, topology.notifications_queue)
    # and everything stops: the processes, then the node (so it wrote what it keeps)
    system.stop()
    system.node.stop()

    # Then the scanner finds neither a card number nor the CVC anywhere
    secrets = Secrets(frozenset({*PANS, MESSAGE_ID_PAN, CANARY_PAN}), CVC)
    messages = {
        "dead-letter queue": [
            (f"dead letter #{i} ({m.headers.get(HEADER_DEAD_LETTER_CODE)})", message_bytes(m))
            for i, m in enumerate(dead)
        ],
        "notifications queue": [
            (f"notification {m.message_id}", message_bytes(m)) for m in notified
        ],
        "result events (subscriber)": [
            (f"result {e.message.message_id}", message_bytes(e.message)) for e in events
        ],
        "webhook POSTs": [
            (f"webhook {event_id}", post) for event_id, post in system.receiver.posts
        ],
        "API answers": [(f"API answer {a.status_code}", a.content) for a in answers],
    }
    broker, *tallies = scan_at_rest(system, secrets, [a.as_published() for a in tried], messages)
    canary = [hit for hit in broker.hits if hit.pan == CANARY_PAN]
    broker.hits = [hit for hit in broker.hits if hit.pan != CANARY_PAN]
    tallies.insert(0, broker)
    planted = _plant_and_rescan(system.node.directory / "mnesia", secrets)
    outcomes_table = _outcomes(tried, refused)
    console.print(scan_table(tallies))
    console.print(f"canary found in the node's files: {len(canary)} time(s)")
    console.print(f"published requests found as sent in the node's files: {len(broker.set_apart)}")
    console.print(outcomes_table)
    console.print(f"processes stopped with {system.exit_codes}")

    leaks = [str(hit) for tally in tallies for hit in tally.hits]
    assert leaks == [], "card data at rest:\n" + "\n".join(leaks)
    # and it is shown to see: the canary in the node's files, a planted number in a copy
    assert canary, "the canary card number was not found in the node's data directory"
    assert [hit.where.endswith("planted.txt") for hit in planted] == [True]
    # and the payments went as they should: sealed cards paid, every card number refused
    assert [(e.result.status, e.result.card_last4) if e and e.result else None for e in paid] == [
        (PaymentStatus.SUCCEEDED, pan[-4:]) for pan in PANS
    ]
    codes = [_code(event) for event in refused]
    assert codes == [("rejected", "pan_in_clear")] * len(tried), outcomes_table
    assert len(dead) == rejected
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
        (422, "pan_in_clear")
    ] * len(answers)


def scan_at_rest(
    system: System,
    secrets: Secrets,
    published: list[bytes],
    messages: dict[str, list[tuple[str, bytes]]],
) -> list[Tally]:
    """The node's data directory first (one copy of each `published` set apart: a broker
    writes a message before anyone can refuse it), then its logs, the store's files and rows,
    the processes' logs and the messages read."""
    database = system.work_dir / "paymq.db"
    store_files = [(p.name, p.read_bytes()) for p in sorted(system.work_dir.glob("paymq.db*"))]
    return [
        scan_tree(
            system.node.directory / "mnesia", secrets, "broker data dir", published=published
        ),
        scan_tree(system.node.directory / "log", secrets, "broker logs"),
        scan_blobs(store_files, secrets, "store files (db, -wal, -shm)", "files"),
        scan_blobs(store_rows(database), secrets, "store rows", "rows"),
        scan_tree(system.log_dir, secrets, "process logs"),
        *(scan_blobs(blobs, secrets, source, "msgs") for source, blobs in messages.items()),
    ]


def results_for(stream: ResultStream, count: int, timeout_s: float) -> list[ResultEvent]:
    """Result events as they come, until `count` of them or the deadline: what is missing
    then shows in the outcomes, after the scan."""
    events: list[ResultEvent] = []
    deadline = time.monotonic() + timeout_s
    for event in stream.events(inactivity_timeout_s=0.2):
        if event is not None:
            events.append(event)
        if len(events) >= count or time.monotonic() > deadline:
            break
    return events


def assign(
    sealed: list[OutboundMessage], tried: list[Attempt], events: list[ResultEvent]
) -> tuple[list[ResultEvent | None], list[ResultEvent | None]]:
    """Each payment's result and each attempt's: by message id, else by payment id; a result
    naming neither (its message id masked, as it should be) goes to an attempt left without."""
    unclaimed = [e for e in events if e.result is not None]

    def claim(message_id: str, payment_id: str) -> ResultEvent | None:
        for event in unclaimed:
            assert event.result is not None
            if message_id == event.result.request_message_id or payment_id == str(
                event.result.payment_id
            ):
                unclaimed.remove(event)
                return event
        return None

    paid = [claim(m.message_id, str(json.loads(m.body)["payment_id"])) for m in sealed]
    refused = [claim(a.message.message_id, a.payment_id) for a in tried]
    refused = [event or (unclaimed.pop(0) if unclaimed else None) for event in refused]
    return paid, refused


def settled(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for `check`; past the deadline go on all the same: the assertions say what is
    missing, after the scan has shown what is at rest."""
    with contextlib.suppress(AssertionError):
        wait_until(check, timeout_s=timeout_s)


def _plant_and_rescan(tree: Path, secrets: Secrets) -> list[Hit]:
    """The hits of a scratch copy of `tree` with a spaced card number planted in a new file,
    less those of the tree itself: the planted one alone, if the scanner sees."""
    scratch = tree.parent / "scratch-copy"
    shutil.copytree(tree, scratch, symlinks=True)
    try:
        nested = next((p for p in sorted(scratch.rglob("*")) if p.is_dir()), scratch)
        (nested / "planted.txt").write_text(f"left here: {grouped(PANS[0], ' ')}\n")
        before = {
            (Path(h.where).relative_to(tree), h.offset) for h in scan_tree(tree, secrets, "").hits
        }
        after = scan_tree(scratch, secrets, "scratch copy").hits
        return [h for h in after if (Path(h.where).relative_to(scratch), h.offset) not in before]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _code(event: ResultEvent | None) -> tuple[str, str | None]:
    if event is None or event.result is None:
        return "no result", None
    return event.result.status.value, event.result.code


def _outcomes(tried: list[Attempt], refused: list[ResultEvent | None]) -> str:
    lines = [f"{'card number in':22} {'written':8} result"]
    for attempt, event in zip(tried, refused, strict=True):
        outcome = "/".join(map(str, _code(event)))
        lines.append(f"{attempt.where:22} {attempt.form:8} {outcome}")
    return "\n".join(lines)


def test_the_scanner_finds_card_numbers_and_the_cvc_however_they_are_written(
    tmp_path: Path,
) -> None:
    secrets = Secrets(frozenset(PANS), CVC)
    # Given a tree with a spaced card number in a nested file among clean ones
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "clean.log").write_bytes(b'{"card_last4":"1111","masked":"****1111"}\n')
    (tmp_path / "a" / "b" / "segment").write_bytes(
        b"\x00\x83h\x02" + grouped(PANS[1], " ").encode() + b"\xff\x00"
    )
    # When it is scanned
    tree = scan_tree(tmp_path, secrets, "planted tree")
    # Then the planted number is found, and only it
    assert [(Path(h.where).name, h.what) for h in tree.hits] == [
        ("segment", "card number ****4444 (spaced)")
    ]
    assert tree.items == 2

    # and of a published input, one copy is set apart and a second copy is a hit
    sent = json.dumps({"idempotency_key": grouped(PANS[0], " ")}).encode()
    at = sent.index(b"4111")
    (tmp_path / "a" / "wal").write_bytes(b"\x00" + sent + b"\x01\x02" + sent)
    twice = scan_tree(tmp_path / "a", secrets, "published twice", published=[sent])
    assert [(Path(h.where).name, h.offset) for h in twice.set_apart] == [("wal", 1 + at)]
    assert [(Path(h.where).name, h.offset) for h in twice.hits] == [
        ("segment", 4),
        ("wal", 1 + len(sent) + 2 + at),
    ]

    # and in message bodies, whole, dashed, inside a longer text, and the CVC as a field
    found = {
        written: [h.what for h in scan_bytes(body, "message", secrets)]
        for written, body in {
            "whole": json.dumps({"merchant_reference": f"order {PANS[2]}"}).encode(),
            "dashed": json.dumps({"note": grouped(PANS[3], "-")}).encode(),
            "escaped-cvc": json.dumps({"log": json.dumps({"cvc": CVC})}).encode(),
            "clean": json.dumps({"amount": 7370, "ref": "order-737", "last4": "0005"}).encode(),
            "other-number": b"4111111111111112 4242424242424242",
        }.items()
    }
    assert found == {
        "whole": ["card number ****0005 (whole)"],
        "dashed": ["card number ****1117 (dashed)"],
        "escaped-cvc": ["the CVC as a field"],
        "clean": [],
        "other-number": [],
    }

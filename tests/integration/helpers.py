"""Waiting for real things with deadlines (never a bare sleep), and reading queues."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from common.amqp.admin import BrokerAdmin
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTERED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    InboundMessage,
    OutboundMessage,
    sign_message,
)
from common.models import PaymentResult
from common.money import Money
from common.sealing import CardData
from common.settings import Settings
from common.signing import REQUEST_TYPE, SignedFields, Signer
from common.subscriber import ResultEvent, ResultStream
from paymq_tools.collect import take
from producer.encode import Draft
from producer.producer import Producer
from workers.main import build_store
from workers.reconciler_thread import ReconcilerThread

T = TypeVar("T")


@contextlib.contextmanager
def reconciling(settings: Settings) -> Iterator[ReconcilerThread]:
    """The production reconciler, in a thread, on these settings' store, until the block ends."""
    store = build_store(settings)
    thread = ReconcilerThread(settings, store.checks, "paymq-test-reconciler")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        thread.join(timeout=10)
        store.close()


def wait_until(check: Callable[[], T], *, timeout_s: float = 15.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def collect_results(
    stream: ResultStream, count: int, *, timeout_s: float = 20.0, terminal_only: bool = True
) -> list[PaymentResult]:
    """The next `count` verified results (untrusted events fail the test)."""
    events = take(
        stream,
        keep=lambda e: _trusted(e).status.terminal or not terminal_only,
        count=count,
        timeout_s=timeout_s,
    )
    if len(events) < count:
        raise AssertionError(f"got {len(events)} of {count} results in {timeout_s} s")
    return [_trusted(e) for e in events]


def _trusted(event: ResultEvent) -> PaymentResult:
    assert event.result is not None, f"untrusted result event: {event.error}"
    return event.result


def drain(admin: BrokerAdmin, queue: str) -> list[InboundMessage]:
    """Every message currently in `queue`, removed from it."""
    return admin.drain(queue)


def rabbitmqctl() -> str | None:
    return shutil.which("rabbitmqctl")


def close_connections(name_prefix: str) -> int:
    """Force-close (CONNECTION_FORCED) every broker connection whose client-provided name starts
    with `name_prefix`, the way a broker restart or `close_all_connections` does."""
    ctl = rabbitmqctl()
    assert ctl is not None
    listing = subprocess.run(
        [ctl, "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    closed = 0
    for line in listing.splitlines():
        pid, _, properties = line.partition("\t")
        if f'"connection_name","{name_prefix}' in properties.replace("<<", '"').replace(">>", '"'):
            subprocess.run(
                [ctl, "-q", "close_connection", pid, "closed by the test"],
                capture_output=True,
                timeout=60,
                check=True,
            )
            closed += 1
    return closed


def require_rabbitmqctl() -> None:
    """Skip a test that needs rabbitmqctl where it is missing; in CI, fail instead: a silent
    skip in CI would be a lie."""
    if rabbitmqctl() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but rabbitmqctl is not on PATH", pytrace=False)
        pytest.skip("rabbitmqctl is not on PATH")


def bound_queues(exchange: str) -> list[str]:
    """The queues bound to `exchange` right now, as the broker lists them."""
    ctl = rabbitmqctl()
    assert ctl is not None
    listing = subprocess.run(
        [ctl, "-q", "list_bindings", "source_name", "destination_name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pairs = (line.split("\t") for line in listing.splitlines())
    return [pair[1] for pair in pairs if len(pair) == 2 and pair[0] == exchange]


def cli_env(**values: str) -> dict[str, str]:
    """This process's environment without any paymq setting or broker URL, plus `values`: a
    child process gets exactly the configuration a test means to give it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PAYMQ_") and name not in ("AMQP_URL", "RABBITMQ_URL")
    }
    # Wide enough that rich never wraps a line a test looks for.
    env["COLUMNS"] = "200"
    env.update(values)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout_s: float = 60.0, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m paymq <args>` to completion, its output captured; `stdin` is what an
    operator types (nothing: end of input)."""
    return subprocess.run(
        [sys.executable, "-m", "paymq", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def collect_events(
    stream: ResultStream, count: int, *, timeout_s: float = 20.0
) -> list[ResultEvent]:
    """The next `count` result events as received (raw message and verified result)."""
    events = take(stream, keep=lambda e: _trusted(e) is not None, count=count, timeout_s=timeout_s)
    if len(events) < count:
        raise AssertionError(f"got {len(events)} of {count} result events in {timeout_s} s")
    return events


def resign(signer: Signer, message: OutboundMessage, body: bytes) -> OutboundMessage:
    """Other body bytes under the same signed header, validly signed: a well-signed message
    whose payload is whatever a test needs it to be."""
    headers = message.headers
    fields = SignedFields(
        message_type=REQUEST_TYPE,
        key_id=str(headers[HEADER_KEY_ID]),
        route=str(headers[HEADER_ROUTE]),
        message_id=message.message_id,
        created_at_ms=int(headers[HEADER_CREATED_AT_MS]),
        expires_at_ms=int(headers[HEADER_EXPIRES_AT_MS]),
    )
    return sign_message(
        signer, fields, body, exchange=message.exchange, routing_key=message.routing_key
    )


def publish_dead_letter(
    settings: Settings, admin: BrokerAdmin, *, code: str = "unknown_key", reason: str = "refused"
) -> OutboundMessage:
    """A signed card request, dead-lettered as a worker does it: a copy to the dead-letter
    exchange, its routing key the channel, with why."""
    with Producer.from_settings(settings, name="paymq-test-producer") as producer:
        _request, message = producer.prepare(card_draft())
    copy = dataclasses.replace(
        message,
        exchange=settings.broker.topology().dead_letter_exchange,
        headers={
            **message.headers,
            HEADER_DEAD_LETTER_CODE: code,
            HEADER_DEAD_LETTER_REASON: reason,
            HEADER_DEAD_LETTERED_AT_MS: 1_767_225_600_000,
        },
    )
    admin.publish(copy)
    return copy


def sealed_card_draft(number: str, *, amount_minor: int = 4200, currency: str = "EUR") -> Draft:
    """A card payment by card number (sealed when encoded), under fresh ids."""
    reference = f"order-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money(amount_minor=amount_minor, currency=currency),
        merchant_reference=reference,
        idempotency_key=reference,
        card=CardData(number=number, exp_month=12, exp_year=2031, cvc="123"),
    )


def card_draft(card: str = "tok_visa", *, amount: str = "12.34", currency: str = "USD") -> Draft:
    """A card payment by one of the sandbox's test tokens, under fresh ids."""
    reference = f"order-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money.from_major(amount, currency),
        merchant_reference=reference,
        idempotency_key=reference,
        card_token=card,
    )


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` serving on a free loopback port, from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

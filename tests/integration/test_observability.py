"""What an operator sees of real `paymq worker` and `paymq reconcile` processes: Prometheus
metrics on PAYMQ_METRICS_PORT, and JSON log lines naming the payment and message they are
about, with no card number or signature in them."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from common.amqp.admin import BrokerAdmin
from common.amqp.gauges import QueueGauges
from common.clock import FixedClock
from common.envelope import HEADER_SIGNATURE
from common.models import PaymentResult
from common.settings import Settings
from common.subscriber import ResultStream
from common.tracing import extract, tracer
from producer.producer import Producer
from sandbox.client import SandboxControl
from tests.integration.helpers import (
    card_draft,
    collect_events,
    http_server,
    sealed_card_draft,
    wait_until,
)
from tests.integration.observed import Metrics, running
from tests.tracing import Recorder

pytestmark = pytest.mark.integration

PAN = "4242424242424242"


def results_until(
    stream: ResultStream, done: Any, *, timeout_s: float = 30.0
) -> list[PaymentResult]:
    """Verified results as they come, until `done(results)` is true."""
    seen: list[PaymentResult] = []
    deadline = time.monotonic() + timeout_s
    for event in stream.events(inactivity_timeout_s=0.2):
        if event is not None:
            assert event.result is not None, f"untrusted result event: {event.error}"
            seen.append(event.result)
        if done(seen):
            return seen
        assert time.monotonic() < deadline, f"results so far: {[r.status for r in seen]}"
    raise AssertionError("result stream ended")


def test_a_worker_process_counts_every_outcome_and_logs_json_naming_each_payment(
    topology: Settings,
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
    tmp_path: Path,
) -> None:
    card_queue = topology.broker.topology().work_queue("card")
    with running(topology, tmp_path, "worker", "card") as worker:
        wait_until(lambda: admin.stats(card_queue).consumers == 1, timeout_s=30, what="consume")
        # Given five requests: paid by card number, declined, paid after one 500 before any
        # charge, in doubt after 500s on every attempt, and one whose body was tampered with
        paid, declined = sealed_card_draft(PAN), card_draft("tok_insufficient_funds")
        retried, doubtful = card_draft(), card_draft()
        control.add_fault("error_before_effect", times=1, reference=str(retried.payment_id))
        control.add_fault("error_before_effect", times=10, reference=str(doubtful.payment_id))
        prepared = [producer.prepare(draft) for draft in (paid, declined, retried, doubtful)]
        _, forged_from = producer.prepare(card_draft())
        forged = dataclasses.replace(forged_from, body=forged_from.body.replace(b"order-", b"x-"))
        messages = [message for _request, message in prepared]
        for message in [*messages, forged]:
            producer.publish(message)

        # When each has its result
        def all_in(seen: list[PaymentResult]) -> bool:
            final = {r.payment_id for r in seen if r.status.value != "pending"}
            ids = {request.payment_id for request, _ in prepared}
            return ids <= final and any(r.payment_id is None for r in seen)

        got = results_until(results, all_in)
        status = {r.payment_id: r.status.value for r in got}
        ids = [request.payment_id for request, _ in prepared]
        assert [status[i] for i in ids] == ["succeeded", "declined", "succeeded", "in_doubt"]
        [rejected] = [r for r in got if r.payment_id is None]

        # Then the worker's metrics count each outcome once, by channel and status
        def scraped() -> Metrics | None:
            metrics = worker.scrape()
            return metrics if metrics("paymq_in_flight", channel="card") == 0 else None

        metrics = wait_until(scraped, what="no delivery in flight")
        payments = "paymq_payments_total"
        assert metrics(payments, channel="card", status="succeeded") == 2
        assert metrics(payments, channel="card", status="declined") == 1
        assert metrics(payments, channel="card", status="in_doubt") == 1
        assert metrics(payments, channel="card", status="rejected") == 1
        # one retry for the first 500, two for the payment that went in doubt on its third
        assert metrics.total("paymq_retries_total", channel="card") == 3
        assert metrics("paymq_dead_lettered_total", channel="card", code=rejected.code) == 1
        # five first passes through the queue; the retries' passes do not count
        assert metrics("paymq_queue_lag_seconds_count", channel="card") == 5
        calls = "paymq_provider_call_seconds_count"
        assert metrics.total(calls, provider="sandbox", operation="execute") == 7
        assert metrics(calls, provider="sandbox", operation="execute", outcome="ok") == 2
        assert metrics(calls, provider="sandbox", operation="execute", outcome="declined") == 1
        # a claim per pass that reached the store (4 payments, 3 retries), an outcome per result
        writes = "paymq_store_write_seconds_count"
        assert metrics(writes, channel="card", write="claim") == 7
        assert metrics(writes, channel="card", write="outcome") == 4
        # and every delivery settled through a confirmed publish (results, retries, refusal)
        assert metrics("paymq_result_publish_seconds_count", channel="card") == 8
        # and the store's gauges show the payment in doubt
        assert metrics("paymq_store_up") == 1
        assert metrics("paymq_in_doubt_payments", channel="card") == 1
        assert metrics("paymq_stored_payments", channel="card", state="succeeded") == 2

        # and the broker's gauges show the worker consuming and the tampered request set aside
        # (asked of the broker at most every 5 s: scrape until the copy shows)
        dead_letters = topology.broker.topology().dead_letter_queue

        def queues() -> Metrics | None:
            metrics = worker.scrape()
            return metrics if metrics("paymq_queue_messages", queue=dead_letters) == 1 else None

        metrics = wait_until(queues, timeout_s=20, what="the dead-letter queue's depth")
        assert metrics("paymq_broker_up") == 1
        assert metrics("paymq_queue_consumers", queue=card_queue) == 1
        assert metrics("paymq_queue_messages", queue=card_queue) == 0

    # And every log line is JSON; the lines about each payment name it and its message
    lines = worker.lines()
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for request, message in prepared:
        about = [line for line in lines if line["payment_id"] == str(request.payment_id)]
        assert about, f"no line names payment {request.payment_id}"
        assert all(line["message_id"] == message.message_id for line in about)
    assert any(line["message_id"] == forged.message_id for line in lines)
    # And no card number or signature appears anywhere
    text = worker.log.read_text()
    assert PAN not in text
    for message in [*messages, forged]:
        assert str(message.headers[HEADER_SIGNATURE]) not in text


def test_a_reconciler_process_counts_its_checks_and_the_payments_it_settles(
    topology: Settings,
    producer: Producer,
    results: ResultStream,
    control: SandboxControl,
    tmp_path: Path,
    start_worker: Any,
) -> None:
    # Given a payment in doubt: every attempt got a 500, so the provider may have acted
    start_worker("card")
    draft = card_draft()
    control.add_fault("error_before_effect", times=10, reference=str(draft.payment_id))
    request, message = producer.prepare(draft)
    producer.publish(message)
    [doubt] = results_until(results, lambda seen: len(seen) == 1)
    assert (doubt.payment_id, doubt.status.value) == (request.payment_id, "in_doubt")

    # When `paymq reconcile` runs and, after its scheduled checks, the provider still has no
    # record of it
    with running(topology, tmp_path, "reconcile") as reconciler:
        [settled] = results_until(results, lambda seen: len(seen) == 1)
        assert (settled.payment_id, settled.status.value) == (request.payment_id, "failed")

        # Then its metrics count the checks, the look-ups and the payment it settled (the
        # check is counted just after the result is published: scrape until it is)
        checks = "paymq_reconciler_checks_total"

        def scraped() -> Metrics | None:
            metrics = reconciler.scrape()
            return metrics if metrics(checks, outcome="settled") == 1 else None

        metrics = wait_until(scraped, timeout_s=20, what="the settling check to be counted")
        assert metrics(checks, outcome="later") >= 1
        assert metrics("paymq_payments_total", channel="card", status="failed") == 1
        lookups = metrics(
            "paymq_provider_call_seconds_count",
            provider="sandbox",
            operation="lookup",
            outcome="ok",
        )
        assert lookups == metrics.total(checks)
        # and the in-doubt gauge falls to 0 (the store is read at most every 5 s)
        wait_until(
            lambda: reconciler.scrape()("paymq_in_doubt_payments", channel="card") == 0,
            timeout_s=20,
            what="the in-doubt gauge to fall to 0",
        )

    # And its lines about the payment name it and the request's message
    about = [line for line in reconciler.lines() if line["payment_id"] == str(request.payment_id)]
    assert any("reconciled: in_doubt -> failed" in line["message"] for line in about)
    assert {line["message_id"] for line in about} == {message.message_id}


def test_one_trace_runs_from_the_producer_through_the_worker_and_provider_to_the_result(
    topology: Settings,
    start_worker: Any,
    producer: Producer,
    results: ResultStream,
    spans: Recorder,
) -> None:
    start_worker("card")
    # Given a payment published from inside a span of the caller's
    with tracer.start_as_current_span("checkout") as checkout:
        request, message = producer.prepare(card_draft())
    producer.publish(message)

    # When its result arrives
    [event] = collect_events(results, 1)
    assert event.result is not None
    assert event.result.payment_id == request.payment_id

    # Then create -> process -> execute form one trace under the caller's span, and the result
    # event names the worker's span
    trace_id = checkout.get_span_context().trace_id
    [create] = spans.named(f"create {topology.broker.topology().requests_exchange}")
    process = wait_until(lambda: spans.named("process card"), what="the worker's span")[0]
    [execute] = spans.named("execute sandbox")
    assert {create.context.trace_id, process.context.trace_id, execute.context.trace_id} == {
        trace_id
    }
    assert create.parent is not None
    assert create.parent.span_id == checkout.get_span_context().span_id
    assert process.parent is not None
    assert process.parent.span_id == create.context.span_id
    assert execute.parent is not None
    assert execute.parent.span_id == process.context.span_id
    carried = trace.get_current_span(extract(event.message.headers)).get_span_context()
    assert (carried.trace_id, carried.span_id) == (trace_id, process.context.span_id)


@pytest.fixture
def collector() -> Iterator[Collector]:
    """An OTLP/HTTP trace receiver on a free port: what a collector would be sent."""
    received = Collector(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            request = ExportTraceServiceRequest.FromString(body)
            with received.lock:
                received.requests.append(request)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    with http_server(Handler) as url:
        received.url = url
        yield received


@dataclass
class Collector:
    url: str
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[tuple[str, str, str, str]]:
        """(service name, span name, trace id, parent span id; in hex) of every span."""
        found = []
        with self.lock:
            for request in self.requests:
                for resource in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource.resource.attributes
                        if a.key == "service.name"
                    )
                    found.extend(
                        (service, span.name, span.trace_id.hex(), span.parent_span_id.hex())
                        for scope in resource.scope_spans
                        for span in scope.spans
                    )
        return found


def test_a_worker_process_exports_its_spans_over_otlp_in_the_request_s_trace(
    topology: Settings,
    producer: Producer,
    results: ResultStream,
    admin: BrokerAdmin,
    collector: Collector,
    tmp_path: Path,
    spans: Recorder,
) -> None:
    # Given `paymq worker card` with PAYMQ_TRACING=otlp, pointed at a collector, and a
    # producer that traces too (`spans`)
    settings = topology.replace(tracing="otlp")
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    card_queue = topology.broker.topology().work_queue("card")
    with running(settings, tmp_path, "worker", "card", env=otlp):
        wait_until(lambda: admin.stats(card_queue).consumers == 1, timeout_s=30, what="consume")
        # When a request carrying a trace context is paid
        request, message = producer.prepare(card_draft())
        producer.publish(message)
        [event] = collect_events(results, 1)
        assert event.result is not None
        assert event.result.payment_id == request.payment_id
        _version, trace_id, create_span_id, _flags = str(message.headers["traceparent"]).split("-")

        # Then the collector receives the worker's span, a child of the producer's, and the
        # provider call's under it
        def exported() -> dict[str, tuple[str, str, str, str]] | None:
            got = {name: span for span in collector.spans() if (name := span[1])}
            return got if {"process card", "execute sandbox"} <= set(got) else None

        got = wait_until(exported, timeout_s=20, what="the worker's spans at the collector")
        assert got["process card"] == (
            "paymq-worker-card",
            "process card",
            trace_id,
            create_span_id,
        )
        service, _name, execute_trace, _parent = got["execute sandbox"]
        assert (service, execute_trace) == ("paymq-worker-card", trace_id)


def test_a_broker_that_cannot_be_asked_shows_as_down_not_as_a_failed_scrape() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    registry = CollectorRegistry()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    registry.register(QueueGauges(url, ["paymq.work.card"], FixedClock(0)))

    assert registry.get_sample_value("paymq_broker_up") == 0
    assert registry.get_sample_value("paymq_queue_messages", {"queue": "paymq.work.card"}) is None

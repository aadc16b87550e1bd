"""Trace context through the worker: a request's traceparent becomes the parent of the worker's
span, and the result event carries that span's context, stored with it."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from common.envelope import InboundMessage
from common.errors import ProviderUnavailable
from common.tracing import TRACEPARENT, extract, traced, tracer
from paymq import logs

if TYPE_CHECKING:
    from tests.tracing import Recorder
    from tests.unit.conftest import Worker


def with_trace(message: InboundMessage) -> tuple[InboundMessage, trace.SpanContext]:
    """The message as a producer inside a span of its own would have sent it."""
    with tracer.start_as_current_span("create card") as span:
        carrier = traced(_outbound(message))
    headers = {**message.headers, TRACEPARENT: carrier.headers[TRACEPARENT]}
    return dataclasses.replace(message, headers=headers), span.get_span_context()


def _outbound(message: InboundMessage) -> Any:
    return message.resend(message.exchange, message.routing_key, {})


def parent_of(header: object) -> tuple[int, int]:
    context = trace.get_current_span(extract({TRACEPARENT: header})).get_span_context()
    return context.trace_id, context.span_id


def test_the_worker_span_is_a_child_of_the_producer_span_and_the_result_carries_it(
    make_request: Callable[..., Any], worker: Worker, spans: Recorder
) -> None:
    message, producer = with_trace(make_request()[1])

    handled = worker.handle(message)

    [process] = spans.named("process card")
    assert process.parent is not None
    assert (process.parent.trace_id, process.parent.span_id) == (
        producer.trace_id,
        producer.span_id,
    )
    assert process.context.trace_id == producer.trace_id
    assert process.attributes is not None
    assert process.attributes["paymq.status"] == "succeeded"
    [event] = handled.events
    assert parent_of(event.headers[TRACEPARENT]) == (
        process.context.trace_id,
        process.context.span_id,
    )


def test_a_repeated_result_is_the_stored_one_trace_context_included(
    make_request: Callable[..., Any], worker: Worker, spans: Recorder
) -> None:
    message, _ = with_trace(make_request()[1])
    first = worker.handle(message)

    again = worker.handle(dataclasses.replace(message, redelivered=True))

    assert again.events == first.events
    assert len(spans.named("process card")) == 2


def test_a_retry_keeps_the_request_s_trace_context(
    make_request: Callable[..., Any], worker: Worker, spans: Recorder
) -> None:
    message, producer = with_trace(make_request()[1])
    worker.channel.script(ProviderUnavailable("connection refused"))

    handled = worker.handle(message)

    [retry] = handled.retries
    assert parent_of(retry.headers[TRACEPARENT]) == (producer.trace_id, producer.span_id)


def test_a_message_without_or_with_a_malformed_traceparent_starts_a_trace_of_its_own(
    make_request: Callable[..., Any], worker: Worker, spans: Recorder
) -> None:
    plain = make_request()[1]
    garbled = make_request(idempotency_key="order-2-key")[1]
    garbled = dataclasses.replace(garbled, headers={**garbled.headers, TRACEPARENT: "00-zz"})

    assert worker.handle(plain).status == "succeeded"
    assert worker.handle(garbled).status == "succeeded"

    processed = spans.named("process card")
    assert len(processed) == 2
    assert all(span.parent is None for span in processed)
    assert processed[0].context.trace_id != processed[1].context.trace_id


def test_log_lines_written_in_a_span_name_its_trace_and_span(spans: Recorder) -> None:
    stream = io.StringIO()
    log = logging.getLogger("paymq.test-tracing")
    log.propagate = False
    log.addHandler(logs.handler("json", stream))
    try:
        with tracer.start_as_current_span("work") as span:
            log.warning("inside")
        log.warning("outside")
    finally:
        log.handlers.clear()

    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )
    assert "trace_id" not in outside

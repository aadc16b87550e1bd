"""Trace context through AMQP headers: W3C `traceparent` (and `tracestate`), with OpenTelemetry.

    producer  "create <channel>" span   -> traceparent on the request
    worker    "process <channel>" span, a child of it; provider calls are its children
              -> traceparent on the result event (stored with it, so a repeat is identical)
    reconciler "reconcile <channel>" span per check -> traceparent on the result it publishes

The headers are outside the signature: they say how to correlate, never what to do, and a
worker ignores a malformed one. Without a tracing backend (PAYMQ_TRACING=off, the default) the
spans are no-ops. The context that came in still passes through unchanged, so an upstream trace
continues into the result events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

from common.envelope import HeaderValue, OutboundMessage
from common.errors import ConfigurationError

logger = logging.getLogger("paymq.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)
TRACING_MODES = ("off", "otlp", "console")

tracer = trace.get_tracer("paymq")


def extract(headers: Mapping[str, object]) -> Context:
    """The trace context a message carries (an empty one when it carries none)."""
    carrier = {name: value for name in TRACE_HEADERS if isinstance(value := headers.get(name), str)}
    return propagate.extract(carrier)


def traced(message: OutboundMessage) -> OutboundMessage:
    """The message with the current span's context in its headers (unchanged without one)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    added: dict[str, HeaderValue] = {k: v for k, v in carrier.items() if k in TRACE_HEADERS}
    if not added:
        return message
    return dataclasses.replace(message, headers={**message.headers, **added})


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, in hex; None when there is no recording one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def configure_tracing(mode: str, service_name: str) -> None:
    """Install the OpenTelemetry SDK for this process: `otlp` exports spans to the collector
    named by the standard OTEL_EXPORTER_OTLP_* variables, `console` prints them."""
    if mode == "off":
        return
    if mode not in TRACING_MODES:
        raise ConfigurationError(f"tracing {mode!r} is not one of {', '.join(TRACING_MODES)}")
    try:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError as exc:
        raise ConfigurationError(
            "PAYMQ_TRACING needs the OpenTelemetry SDK: pip install 'paymq[tracing]'"
        ) from exc
    exporter: SpanExporter
    if mode == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "PAYMQ_TRACING=otlp needs the OTLP exporter: pip install 'paymq[tracing]'"
            ) from exc
        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info("tracing: %s, service %s", mode, service_name)

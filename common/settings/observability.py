"""The observability section of the settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from common.settings.section import Section, readers


class ObservabilitySettings(Section):
    """Observability: logs, traces and the Prometheus endpoint of the long-running processes."""

    heading = "Logs, traces and metrics"
    read_by = ("worker", "reconciler", "api", "webhooks", "sandbox")

    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="json: one object per line with payment_id and message_id; text: for "
        "people; auto: text on a terminal, json otherwise.",
    )
    tracing: Literal["off", "otlp", "console"] = Field(
        "off",
        description="OpenTelemetry spans: otlp exports them to the collector named by the "
        "standard OTEL_EXPORTER_OTLP_ENDPOINT (pip install 'paymq[tracing]'), console prints "
        "them. Trace context travels in AMQP headers (traceparent) either way.",
        json_schema_extra=readers("worker", "reconciler", "api", "webhooks"),
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface the Prometheus endpoint of workers, reconcilers and the "
        "webhooks process listens on (0.0.0.0 in a container).",
        json_schema_extra=readers("worker", "reconciler", "webhooks"),
    )
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        None,
        description="Port of that endpoint (GET /metrics); unset: none (several processes on "
        "one host each need their own port; 0 picks a free one and logs it). The HTTP API "
        "serves /metrics on its own port.",
        json_schema_extra=readers("worker", "reconciler", "webhooks"),
    )

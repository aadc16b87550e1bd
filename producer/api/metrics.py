"""The API's own metrics, beside the process's (common/metrics.py) on the same /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from common.metrics import Metrics


class ApiMetrics:
    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.requests = Counter(
            "paymq_api_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "paymq_api_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=registry,
        )
        self.accepted = Counter(
            "paymq_api_payments_accepted",
            "Payments answered 202: signed and confirmed by the broker (replayed: a repeated "
            "request with the same Idempotency-Key and body).",
            ["channel", "replayed"],
            registry=registry,
        )


def count_requests(app: FastAPI, metrics: ApiMetrics) -> None:
    @app.middleware("http")
    async def _count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started_s = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The template (/payments/{payment_id}), never the path: one series per route.
        template = getattr(route, "path", "unmatched")
        method = request.method
        metrics.latency.labels(method, template).observe(time.perf_counter() - started_s)
        metrics.requests.labels(method, template, str(response.status_code)).inc()
        return response


def serve_metrics(app: FastAPI, metrics: Metrics) -> None:
    """GET /metrics (and /metrics/) answers the registry in Prometheus' text format. A route,
    not prometheus_client's ASGI app mounted there: a mount answers only below its path, and
    /metrics itself was a 307 redirect to /metrics/ that scrapers need not follow."""
    registry = metrics.registry

    def scrape() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for path in ("/metrics", "/metrics/"):
        app.add_api_route(path, scrape, methods=["GET"], include_in_schema=False)

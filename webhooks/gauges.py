"""Webhook deliveries by endpoint and state, and how long the oldest pending one has waited,
read from the store when scraped (at most once per `cache_s`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import RowMapping

from common.clock import Clock
from common.metrics import CachedRead
from webhooks.deliveries import DeliveryState, WebhookDeliveries


class WebhookGauges(Collector):
    def __init__(self, deliveries: WebhookDeliveries, clock: Clock, *, cache_s: float = 5.0):
        self._counts = CachedRead(deliveries.counts, clock, cache_s)
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        rows: Sequence[RowMapping] | None = self._counts()
        if rows is None:
            return
        by_state = GaugeMetricFamily(
            "paymq_webhook_deliveries",
            "Webhook deliveries in the store by endpoint and state.",
            labels=["endpoint", "state"],
        )
        waiting = GaugeMetricFamily(
            "paymq_webhook_oldest_pending_age_seconds",
            "How long the oldest pending delivery of each endpoint has existed.",
            labels=["endpoint"],
        )
        now_ms = self._clock.now_ms()
        for row in rows:
            by_state.add_metric([row["endpoint_id"], row["state"]], int(row["count"]))
            if row["state"] == DeliveryState.PENDING.value:
                age_s = max(0, now_ms - int(row["oldest_ms"])) / 1000
                waiting.add_metric([row["endpoint_id"]], age_s)
        yield by_state
        yield waiting

"""Store-wide gauges for Prometheus, read from the payment store when scraped: payments by
channel and state (paymq_stored_payments), and how many are in doubt and for how long (the
figure to alert on: an in-doubt payment is money nobody knows the fate of).

Every worker and reconciler process serves the same figures, since they share one store; a
scrape reads at most once per `cache_s`, so many scrapers cost the store one query each time.
A store that cannot be read shows as paymq_store_up 0, not as a failed scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from common.clock import Clock
from common.metrics import CachedRead
from store.database import reading
from store.outage import unavailable_as_retryable
from store.schema import payments
from store.states import State


@dataclass(frozen=True)
class StateCount:
    channel: str
    state: str
    count: int
    #: When the longest-standing payment in this state last changed.
    oldest_updated_ms: int


def state_counts(engine: Engine) -> list[StateCount]:
    query = select(
        payments.c.channel, payments.c.state, func.count(), func.min(payments.c.updated_ms)
    ).group_by(payments.c.channel, payments.c.state)
    with unavailable_as_retryable(), reading(engine) as connection:
        return [
            StateCount(str(channel), str(state), int(count), int(oldest))
            for channel, state, count, oldest in connection.execute(query)
        ]


class StoreGauges(Collector):
    def __init__(
        self,
        read: Callable[[], Sequence[StateCount]],
        clock: Clock,
        *,
        channels: Iterable[str],
        cache_s: float = 5.0,
    ) -> None:
        self._cached = CachedRead(read, clock, cache_s)
        self._clock = clock
        self._channels = tuple(channels)

    def collect(self) -> Iterable[Metric]:
        counts = self._cached()
        up = GaugeMetricFamily("paymq_store_up", "1 when the payment store could be read.")
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        by_state = GaugeMetricFamily(
            "paymq_stored_payments",
            "Payments in the store by channel and state.",
            labels=["channel", "state"],
        )
        for row in counts:
            by_state.add_metric([row.channel, row.state], row.count)
        yield by_state
        yield from self._doubt(counts)

    def _doubt(self, counts: Sequence[StateCount]) -> Iterable[Metric]:
        now_ms = self._clock.now_ms()
        doubtful = {row.channel: row for row in counts if row.state == State.IN_DOUBT.value}
        number = GaugeMetricFamily(
            "paymq_in_doubt_payments",
            "Payments in doubt: the provider may have acted; the reconciler is asking.",
            labels=["channel"],
        )
        age = GaugeMetricFamily(
            "paymq_in_doubt_oldest_age_seconds",
            "How long the longest in-doubt payment has been in doubt (0 when none is).",
            labels=["channel"],
        )
        for channel in sorted({*self._channels, *doubtful}):
            row = doubtful.get(channel)
            number.add_metric([channel], 0 if row is None else row.count)
            age_s = 0.0 if row is None else max(0, now_ms - row.oldest_updated_ms) / 1000
            age.add_metric([channel], age_s)
        yield number
        yield age

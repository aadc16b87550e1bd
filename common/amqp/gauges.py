"""Queue depths and consumers for Prometheus, asked of the broker when scraped (at most once
per `cache_s`, on a short connection of its own): the work queues, the retry tiers, the
dead-letter and notification queues. A broker that cannot be asked shows as paymq_broker_up 0.

The dead-letter queue's depth is the figure to alert on: every message in it waits for a
person (`paymq dlq`), including the poison the broker set aside by its delivery limit, which no
worker counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.amqp.admin import BrokerAdmin, QueueStats
from common.clock import Clock
from common.metrics import CachedRead
from common.topology import Topology

#: A scrape waits at most this long for the broker.
CONNECT_TIMEOUT_S = 2.0


def topology_queues(topology: Topology) -> list[str]:
    return [queue.name for queue in topology.queues()]


class QueueGauges(Collector):
    def __init__(
        self, url: str, queues: Sequence[str], clock: Clock, *, cache_s: float = 5.0
    ) -> None:
        self._url = url
        self._queues = tuple(queues)
        self._stats = CachedRead(self._read, clock, cache_s)

    def _read(self) -> list[QueueStats]:
        with BrokerAdmin(
            self._url, name="paymq-metrics", connect_timeout_s=CONNECT_TIMEOUT_S
        ) as admin:
            return [admin.stats(queue) for queue in self._queues]

    def collect(self) -> Iterable[Metric]:
        stats = self._stats()
        up = GaugeMetricFamily(
            "paymq_broker_up", "1 when the broker answered for every queue at the last ask."
        )
        up.add_metric([], 0 if stats is None else 1)
        yield up
        if stats is None:
            return
        messages = GaugeMetricFamily(
            "paymq_queue_messages", "Messages ready in each queue.", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "paymq_queue_consumers", "Consumers of each queue.", labels=["queue"]
        )
        for queue in stats:
            messages.add_metric([queue.name], queue.messages)
            consumers.add_metric([queue.name], queue.consumers)
        yield messages
        yield consumers

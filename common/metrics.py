"""Prometheus metrics of one paymq process: one registry, built at the entry point and passed
down, served on `PAYMQ_METRICS_PORT` (workers, reconcilers, webhooks) or on the API's own
`/metrics`. Names carry their unit; labels are small closed sets (channel, status, provider,
error code), never a payment id.

    paymq_payments_total{channel,status}            payments that reached a status
    paymq_provider_call_seconds{provider,operation,outcome}   provider latency
    paymq_retries_total{channel,code}               attempts sent back to a retry tier
    paymq_dead_lettered_total{channel,code}         messages kept in the dead-letter queue
    paymq_queue_lag_seconds{channel}                signed until taken by a worker (first pass)
    paymq_store_write_seconds{channel,write}        a payment's claim and outcome: handed to
                                                    the store until committed
    paymq_result_publish_seconds{channel}           a payment's handling done until its result
                                                    events are confirmed (then it is acked)
    paymq_in_flight{channel}                        deliveries a worker is handling now
    paymq_reconciler_checks_total{outcome}          provider look-ups by the reconciler
    paymq_results_republished_total                 stored results the reconciler published
                                                    again (no confirmed publish in time)
    paymq_abandoned_claims_total                    claims no delivery carried any more, put
                                                    in doubt by the reconciler
    paymq_requests_refreshed_total{channel}         requests sent back as a fresh copy (their
                                                    delivery count neared the queue's limit)
    paymq_store_stalled, paymq_store_stalls_total   this process's store calls failing, and
                                                    how often they started to
    paymq_store_transactions_total, paymq_store_writes_total,
    paymq_store_batches_rolled_back_total          the store writer's work (store/writer.py)
    paymq_webhook_events_total{outcome}, paymq_webhook_attempt_seconds{endpoint,result},
    paymq_webhook_gave_up_total{endpoint}           the webhooks process
    paymq_stored_payments{channel,state}, paymq_in_doubt_payments{channel},
    paymq_in_doubt_oldest_age_seconds{channel}      from the store, at scrape time
                                                    (store/gauges.py)
    paymq_broker_up, paymq_queue_messages{queue}, paymq_queue_consumers{queue}
                                                    from the broker, at scrape time
                                                    (common/amqp/gauges.py)
    paymq_trusted_key{key_id,role,status}           the keys a process verifies with now
                                                    (common/trustedkeys.py)

The API adds its request counters (producer/api/metrics.py), the webhooks process its
deliveries by state (webhooks/gauges.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from common.clock import Clock
from common.errors import PaymqError, SetupError

logger = logging.getLogger("paymq.metrics")

#: Provider calls take milliseconds (a local emulator) to tens of seconds (a timeout); the
#: steps between 50 ms and 1 s, where most providers answer, are close enough for a percentile.
PROVIDER_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: A store write or a publish takes a millisecond when all is well, seconds when it is not.
FAST_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: A request waits milliseconds in a healthy queue, minutes to hours in a backlog.
LAG_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0)


@dataclass
class Metrics:
    """The process's metrics. Each test or process makes its own: nothing global."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        registry = self.registry
        self.payments = Counter(
            "paymq_payments",
            "Payments that reached a status, counted where it was recorded: by a worker "
            "(with its result event) or by a reconciler.",
            ["channel", "status"],
            registry=registry,
        )
        self.provider_call = Histogram(
            "paymq_provider_call_seconds",
            "Provider calls: execute (charge, payout), lookup and cancel, by outcome (ok, "
            "declined, refused, retryable, unknown, error).",
            ["provider", "operation", "outcome"],
            buckets=PROVIDER_BUCKETS_S,
            registry=registry,
        )
        self.retries = Counter(
            "paymq_retries",
            "Provider attempts that failed transiently and went to a retry tier, by error code.",
            ["channel", "code"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "paymq_dead_lettered",
            "Messages sent to the dead-letter queue, by reason code.",
            ["channel", "code"],
            registry=registry,
        )
        self.queue_lag = Histogram(
            "paymq_queue_lag_seconds",
            "From a request's signing to a worker taking it, on its first pass (retries wait "
            "in their tiers on purpose and are not counted).",
            ["channel"],
            buckets=LAG_BUCKETS_S,
            registry=registry,
        )
        self.store_write = Histogram(
            "paymq_store_write_seconds",
            "A payment's store writes as the worker waits for them: its claim (before the "
            "provider call) and its outcome (before its result is published), from handing "
            "them to the store writer until committed; grouped commits and lock waits included.",
            ["channel", "write"],
            buckets=FAST_BUCKETS_S,
            registry=registry,
        )
        self.result_publish = Histogram(
            "paymq_result_publish_seconds",
            "From a payment's handling done (its outcome recorded) until the broker confirmed "
            "its result events, after which its delivery is acked: the hand-back to the "
            "connection's thread, any settle batching, the publish and its confirm.",
            ["channel"],
            buckets=FAST_BUCKETS_S,
            registry=registry,
        )
        self.in_flight = Gauge(
            "paymq_in_flight",
            "Deliveries a worker is handling: received, not yet acked or returned.",
            ["channel"],
            registry=registry,
        )
        self.webhook_events = Counter(
            "paymq_webhook_events",
            "Result events the webhooks process took from its queue: stored (their deliveries "
            "committed) or untrusted (dead-lettered, never delivered).",
            ["outcome"],
            registry=registry,
        )
        self.webhook_attempt = Histogram(
            "paymq_webhook_attempt_seconds",
            "Webhook POSTs by endpoint and result (delivered, refused, timeout, "
            "connection_error, error).",
            ["endpoint", "result"],
            buckets=PROVIDER_BUCKETS_S,
            registry=registry,
        )
        self.webhook_gave_up = Counter(
            "paymq_webhook_gave_up",
            "Webhook deliveries given up after the last attempt of the schedule (see "
            "`paymq webhooks redeliver --failed`).",
            ["endpoint"],
            registry=registry,
        )
        self.reconciler_checks = Counter(
            "paymq_reconciler_checks",
            "Reconciler checks of pending and in-doubt payments: settled (the state changed) "
            "or later (checked again on the schedule; failed look-ups are in "
            'paymq_provider_call_seconds{operation="lookup"}).',
            ["outcome"],
            registry=registry,
        )

        self.results_republished = Counter(
            "paymq_results_republished",
            "Stored results whose publish the broker had not confirmed in time (their worker "
            "crashed, lost its channel or had its delivery dead-lettered), published again from "
            "the store by a reconciler.",
            registry=registry,
        )
        self.abandoned_claims = Counter(
            "paymq_abandoned_claims",
            "Claimed payments no delivery carried any more (dead-lettered or lost), put in "
            "doubt by a reconciler, which then asks the provider.",
            registry=registry,
        )
        self.requests_refreshed = Counter(
            "paymq_requests_refreshed",
            "Requests whose delivery count neared the queue's delivery limit (connections lost "
            "while they were in flight), sent back to the queue as a fresh copy.",
            ["channel"],
            registry=registry,
        )
        self.store_stalled = Gauge(
            "paymq_store_stalled",
            "1 while this process's calls to the payment store fail (stalled, locked or down; "
            "a worker takes no deliveries then), else 0.",
            registry=registry,
        )
        self.store_stalls = Counter(
            "paymq_store_stalls",
            "Times the payment store stopped answering this process (one per stall, however "
            "many payments met it).",
            registry=registry,
        )

    def payment(self, channel: str, status: str) -> None:
        self.payments.labels(channel, status).inc()


T = TypeVar("T")


class CachedRead(Generic[T]):
    """`read()` at most once per `cache_s`, however often Prometheus scrapes; None while what
    it reads (the store, the broker) cannot be read: a gauge then goes missing, not the scrape."""

    def __init__(self, read: Callable[[], T], clock: Clock, cache_s: float) -> None:
        self._read = read
        self._clock = clock
        self._cache_ms = int(cache_s * 1000)
        self._lock = threading.Lock()
        self._read_at_ms: int | None = None
        self._value: T | None = None

    def __call__(self) -> T | None:
        with self._lock:
            now_ms = self._clock.now_ms()
            fresh = self._read_at_ms is not None and now_ms - self._read_at_ms < self._cache_ms
            if not fresh:
                try:
                    self._value = self._read()
                # SetupError too (a queue that does not exist, a management API refusing the
                # user): a gauge goes missing, never the scrape.
                except (PaymqError, SetupError) as exc:
                    logger.warning("metrics: cannot read %s", exc)
                    self._value = None
                self._read_at_ms = now_ms
            return self._value


def serve_metrics(metrics: Metrics, host: str, port: int) -> int:
    """Serve /metrics from a daemon thread; returns the port (0 picks a free one)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    bound = int(server.server_port)
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    return bound

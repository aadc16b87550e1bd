"""Entry points: build everything from settings, then run a worker or a reconciler."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import Engine

from common.amqp.admin import prepare_topology
from common.amqp.gauges import QueueGauges, topology_queues
from common.amqp.session import AmqpSession
from common.clock import MonotonicClock, SystemClock
from common.details import CHANNELS
from common.keyring import KeyRole
from common.metrics import Metrics, serve_metrics
from common.process import process_name
from common.scheduling import schedule_threads
from common.sealingkeys import SealingKeys
from common.settings import Settings
from common.signing import Signer
from common.trustedkeys import TrustedKeyGauge, trusted_keyring
from store.checks import Checks
from store.claims import Claims
from store.database import engine_for, upgrade
from store.gauges import StoreGauges, state_counts
from store.health import StoreHealth
from store.outage import ping
from store.writer import WriterCounters
from workers.channels import ChannelDeps, build_channel
from workers.config import HandlerConfig
from workers.consumer import Consumer, ConsumerOptions
from workers.crashpoints import crash_points
from workers.handler import Handler, refresh_after
from workers.providers.registry import build_providers
from workers.published import PublishedMarks, flush_interval_s
from workers.reconciler_thread import ReconcilerThread
from workers.retries import RetryPolicy
from workers.session import session_options

logger = logging.getLogger("paymq.worker")


@dataclass(frozen=True)
class ProcessStore:
    """The store as one process uses it: one engine and one health watch, the claims its
    deliveries take and the checks its reconciler makes."""

    engine: Engine
    claims: Claims
    checks: Checks

    def close(self) -> None:
        """Commit the writes handed over, then close the engine's connections."""
        self.claims.close()
        self.engine.dispose()


#: PostgreSQL connections a worker or reconciler process keeps open (as many again while busy).
#: Its payments write through its one store writer, whatever the concurrency; the others serve
#: the reconciler, the gauges, the health ping and the reads that follow a lost claim.
STORE_POOL_SIZE = 4


def build_store(
    settings: Settings, *, owner: str | None = None, metrics: Metrics | None = None
) -> ProcessStore:
    """The payment store, its schema brought up to date first (safe to race), with a health
    watch that logs and counts its stalls."""
    engine = engine_for(settings.store, pool_size=STORE_POOL_SIZE)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    clock = SystemClock()
    health = StoreHealth(lambda: ping(engine), metrics=metrics)
    claims = Claims(
        engine,
        clock,
        owner=owner or process_name(),
        lease_ms=int(settings.worker.claim_lease_s * 1000),
        health=health,
    )
    if metrics is not None:
        metrics.registry.register(WriterCounters(claims.writer))
    return ProcessStore(engine, claims=claims, checks=Checks(engine, clock, health=health))


def build_consumer(
    settings: Settings,
    channel_name: str,
    *,
    name: str | None = None,
    claims: Claims | None = None,
    metrics: Metrics | None = None,
) -> Consumer:
    """Everything a worker needs, from settings; raises ConfigurationError early."""
    metrics = metrics or Metrics()
    topology = settings.broker.topology()
    queue = topology.work_queue(channel_name)
    # Read again when its files change (a key added, phased out or retired), looked at every
    # second: a rotation counts within about a second, without a restart.
    keyrings = trusted_keyring(settings.keys.keys_dir)
    metrics.registry.register(TrustedKeyGauge(keyrings.current))
    signer = Signer.for_role(settings.keys.keys_dir, settings.keys.worker_key_id, KeyRole.WORKER)
    providers = build_providers(settings, MonotonicClock(), metrics)
    deps = ChannelDeps(
        card_route=providers.card_route(),
        payout_route=providers.payout_route(),
        sealing_keys=SealingKeys(settings.keys.keys_dir, keyrings),
    )
    crash = crash_points(settings.faults)
    owned: ProcessStore | None = None
    if claims is None:
        owned = build_store(settings, metrics=metrics)
        claims = owned.claims
    store = claims
    published = PublishedMarks(
        store.mark_published,
        interval_s=flush_interval_s(settings.reconciler.republish_after_s),
    )
    published.start()

    def stopped() -> None:
        providers.close()
        published.close()
        if owned is not None:
            owned.close()

    handler = Handler(
        HandlerConfig(
            channel=channel_name,
            topology=topology,
            retry=RetryPolicy(settings.broker.retry_delays_ms, settings.worker.max_attempts),
            max_body_bytes=settings.messages.max_body_bytes,
            max_clock_skew_ms=settings.messages.max_clock_skew_s * 1000,
            first_check_ms=int(settings.reconciler.reconcile_schedule_s[0] * 1000),
            poison_after_takeovers=settings.worker.poison_after_takeovers,
            refresh_after_deliveries=refresh_after(settings.broker.delivery_limit),
        ),
        build_channel(channel_name, deps),
        keyring=keyrings,
        signer=signer,
        clock=SystemClock(),
        store=store,
        crash=crash,
        metrics=metrics,
    )
    options = ConsumerOptions(
        queue=queue,
        channel=channel_name,
        concurrency=settings.worker.worker_concurrency,
        prefetch=settings.worker.prefetch,
        shutdown_grace_s=settings.worker.shutdown_grace_s,
        health_file=settings.worker.health_file,
    )
    amqp = session_options(settings, name or f"paymq-worker-{channel_name}")
    consumer = Consumer(
        lambda listener: AmqpSession(amqp, listener),
        options,
        handler.handle,
        on_stopped=stopped,
        crash=crash,
        metrics=metrics,
        published=published.add,
    )
    # While the store cannot record payments, the worker takes no deliveries.
    store.health.listen(consumer.store_changed)
    return consumer


def _on_signals(stop: Callable[[], None]) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def process_metrics(settings: Settings, engine: Engine, metrics: Metrics) -> Metrics:
    """The process's metrics, with the store's and the broker's gauges, served if
    PAYMQ_METRICS_PORT is set."""
    clock = SystemClock()
    metrics.registry.register(StoreGauges(lambda: state_counts(engine), clock, channels=CHANNELS))
    queues = topology_queues(settings.broker.topology())
    metrics.registry.register(QueueGauges(settings.broker.amqp_url, queues, clock))
    if settings.observability.metrics_port is not None:
        serve_metrics(
            metrics, settings.observability.metrics_host, settings.observability.metrics_port
        )
    return metrics


def run_worker(settings: Settings, channel_name: str) -> None:
    """Declare the topology, then consume until SIGTERM or SIGINT has drained the worker."""
    # Before any thread starts: they inherit it (common/scheduling.py).
    refused = schedule_threads(settings.worker.worker_scheduling)
    if refused is not None:
        logger.warning("worker scheduling %s: %s", settings.worker.worker_scheduling, refused)
    prepare_topology(
        settings.broker.amqp_url,
        settings.broker.topology(),
        declare=settings.broker.declare_topology,
        connect_timeout_s=settings.broker.connect_timeout_s,
    )
    metrics = Metrics()
    store = build_store(settings, metrics=metrics)
    reconciler = None
    try:
        process_metrics(settings, store.engine, metrics)
        consumer = build_consumer(settings, channel_name, claims=store.claims, metrics=metrics)
        if settings.worker.worker_reconciles:
            name = f"paymq-reconciler-{channel_name}"
            reconciler = ReconcilerThread(settings, store.checks, name, metrics)
            reconciler.start()
        _on_signals(consumer.shutdown)
        logger.info(
            "worker for %s: %d in flight, prefetch %d, store %s, results signed with key %s",
            channel_name,
            settings.worker.worker_concurrency,
            settings.worker.prefetch,
            store.engine.url.render_as_string(hide_password=True),
            settings.keys.worker_key_id,
        )
        consumer.run()
    finally:
        if reconciler is not None:
            reconciler.stop()
            reconciler.join(timeout=10)
        store.close()


def run_reconciler(settings: Settings) -> None:
    """`paymq reconcile`: reconciliation passes until SIGTERM or SIGINT."""
    prepare_topology(
        settings.broker.amqp_url,
        settings.broker.topology(),
        declare=settings.broker.declare_topology,
        connect_timeout_s=settings.broker.connect_timeout_s,
    )
    metrics = Metrics()
    store = build_store(settings, metrics=metrics)
    try:
        process_metrics(settings, store.engine, metrics)
        reconciler = ReconcilerThread(settings, store.checks, "paymq-reconciler", metrics)
        _on_signals(reconciler.stop)
        reconciler.start()
        while reconciler.is_alive():
            reconciler.join(timeout=1.0)
    finally:
        store.close()

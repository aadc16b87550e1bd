"""`paymq webhooks run`: the intake (consume, verify, store) on the main thread and the
dispatcher (claim, send, record) on another, until SIGTERM or SIGINT; attempts in flight then
finish and are recorded before the process exits.

Events published before the webhooks queue first exists (the first `run`) are not delivered:
the queue is declared by this process only, at start-up and before it announces itself (its
metrics, its start line), so whoever waits for that announcement can publish at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from importlib.metadata import version
from types import FrameType

from common.amqp.admin import BrokerAdmin, prepare_topology
from common.amqp.gauges import QueueGauges
from common.clock import Clock, SystemClock
from common.metrics import Metrics, serve_metrics
from common.process import process_name
from common.settings import Settings
from common.subscriber import ResultVerifier
from common.trustedkeys import TrustedKeyGauge, trusted_keyring
from store.database import engine_for, upgrade
from webhooks.addresses import AddressPolicy
from webhooks.deliveries import WebhookDeliveries
from webhooks.dispatcher import Dispatcher
from webhooks.endpoints import Endpoints, endpoints_file
from webhooks.gauges import WebhookGauges
from webhooks.intake import Intake, QueueConsumer

logger = logging.getLogger("paymq.webhooks")


def user_agent() -> str:
    return f"paymq-webhooks/{version('paymq')}"


@dataclass
class WebhookService:
    settings: Settings
    deliveries: WebhookDeliveries
    intake: Intake
    dispatcher: Dispatcher
    clock: Clock
    stopping: threading.Event
    #: Set once the webhooks queue exists (events published from then on are delivered).
    declared: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Consume and deliver until `stop()`; returns once in-flight attempts are recorded."""
        sending = threading.Thread(target=self.dispatcher.run, name="paymq-webhook-dispatcher")
        sending.start()
        try:
            QueueConsumer(
                self.settings.broker.amqp_url,
                self.settings.broker.topology(),
                self.intake,
                self.clock,
                self.stopping,
                on_added=self.dispatcher.wake,
                reconnect_max_delay_s=self.settings.broker.reconnect_max_delay_s,
                declared=self.declared,
            ).run()
        finally:
            self.dispatcher.stop()
            sending.join()

    def stop(self) -> None:
        self.stopping.set()
        self.dispatcher.stop()


def build_service(
    settings: Settings, *, owner: str | None = None, metrics: Metrics | None = None
) -> WebhookService:
    """Every part from the settings; a configuration problem stops here, before consuming."""
    # requests only where it is used
    from webhooks.sender import Sender  # noqa: PLC0415
    from webhooks.transport import AddressGuard  # noqa: PLC0415

    clock = SystemClock()
    endpoints = endpoints_file(settings.webhook_endpoints_path).current
    engine = engine_for(settings.store, pool_size=settings.webhooks.webhook_concurrency + 2)
    try:
        upgrade(engine)
        deliveries = WebhookDeliveries(
            engine,
            clock,
            owner=owner or process_name(),
            lease_ms=int(settings.webhooks.webhook_lease_s * 1000),
        )
        keyrings = trusted_keyring(settings.keys.keys_dir)
        if metrics is not None:
            metrics.registry.register(TrustedKeyGauge(keyrings.current))
        verifier = ResultVerifier(keyrings, max_body_bytes=settings.messages.max_body_bytes)
        sender = Sender(
            clock,
            user_agent=user_agent(),
            connect_timeout_s=settings.webhooks.webhook_connect_timeout_s,
            read_timeout_s=settings.webhooks.webhook_read_timeout_s,
            guard=AddressGuard(AddressPolicy(settings.webhooks.webhook_allow_private_networks)),
        )
        dispatcher = Dispatcher(
            deliveries,
            sender,
            endpoints,
            clock=clock,
            schedule_s=settings.webhooks.webhook_retry_schedule_s,
            concurrency=settings.webhooks.webhook_concurrency,
            per_endpoint=settings.webhooks.webhook_endpoint_concurrency,
            poll_interval_s=settings.webhooks.webhook_poll_interval_s,
            metrics=metrics,
        )
        intake = Intake(verifier, deliveries, endpoints, metrics)
        return WebhookService(settings, deliveries, intake, dispatcher, clock, threading.Event())
    except BaseException:
        engine.dispose()
        raise


def declare_queue(settings: Settings) -> None:
    """Declare the webhooks queue and bind it to the results exchange: result events published
    from then on are kept for delivery. The results exchange has another queue bound, so an
    event published before this is confirmed and routed there, never returned: it is lost here.
    """
    topology = settings.broker.topology()
    with BrokerAdmin(
        settings.broker.amqp_url,
        name="paymq-webhooks",
        connect_timeout_s=settings.broker.connect_timeout_s,
    ) as admin:
        admin.declare_queue(topology.webhooks_queue_spec(), topology.webhooks_binding())


def run_webhooks(settings: Settings) -> None:
    prepare_topology(
        settings.broker.amqp_url,
        settings.broker.topology(),
        declare=settings.broker.declare_topology,
        connect_timeout_s=settings.broker.connect_timeout_s,
    )
    metrics = Metrics()
    service = build_service(settings, metrics=metrics)
    try:
        _start(settings, service, metrics)
        service.run()
    finally:
        service.deliveries.engine.dispose()
    logger.info("webhooks stopped")


def _start(settings: Settings, service: WebhookService, metrics: Metrics) -> None:
    """The webhooks queue, the metrics, the signals and the start line, before consuming."""
    # Before the metrics and the start line, which tell operators and tests the sender is up:
    # the consumer declares the queue again on its own connection, but only a moment later,
    # and result events published in that moment reached no webhooks queue. After
    # build_service, so a sender whose configuration is wrong leaves no queue behind to grow.
    declare_queue(settings)
    metrics.registry.register(WebhookGauges(service.deliveries, service.clock))
    topology = settings.broker.topology()
    queues = [topology.webhooks_queue, topology.dead_letter_queue]
    metrics.registry.register(QueueGauges(settings.broker.amqp_url, queues, service.clock))
    if settings.observability.metrics_port is not None:
        serve_metrics(
            metrics, settings.observability.metrics_host, settings.observability.metrics_port
        )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s: finishing the webhooks in flight", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info(
        "webhooks: queue %s, %d endpoints in %s, %d in flight",
        settings.broker.topology().webhooks_queue,
        len(Endpoints.load(settings.webhook_endpoints_path).endpoints),
        settings.webhook_endpoints_path,
        settings.webhooks.webhook_concurrency,
    )
    if settings.webhooks.webhook_allow_private_networks:
        logger.info("webhooks: endpoints on loopback and private networks are allowed")

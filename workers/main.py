"""The worker's entry point: builds everything from settings and runs one channel's consumer."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from common.amqp.admin import BrokerAdmin
from common.amqp.session import SessionOptions
from common.clock import SystemClock
from common.keyring import TRUSTED_DIR, Keyring
from common.sealing import load_sealing_private_keys
from common.settings import Settings
from common.signing import Signer
from workers.channels import ChannelDeps, build_channel
from workers.consumer import Consumer, ConsumerOptions
from workers.handler import Handler, HandlerConfig
from workers.providers.sandbox import SandboxProvider
from workers.retry import RetryPolicy

logger = logging.getLogger("paymq.worker")


def build_consumer(settings: Settings, channel_name: str, *, name: str | None = None) -> Consumer:
    """Everything a worker needs, from settings; raises ConfigurationError early."""
    topology = settings.topology()
    queue = topology.work_queue(channel_name)
    keyring = Keyring.load(settings.keys_dir / TRUSTED_DIR)
    signer = Signer.load(settings.keys_dir, settings.worker_key_id)
    provider = SandboxProvider(
        settings.provider_url,
        connect_timeout_s=settings.provider_connect_timeout_s,
        read_timeout_s=settings.provider_read_timeout_s,
    )
    deps = ChannelDeps(
        card_provider=provider,
        payout_provider=provider,
        sealing_keys=load_sealing_private_keys(settings.keys_dir, keyring),
    )
    handler = Handler(
        HandlerConfig(
            channel=channel_name,
            topology=topology,
            retry=RetryPolicy(settings.retry_delays_ms, settings.max_attempts),
            max_body_bytes=settings.max_body_bytes,
            max_clock_skew_ms=settings.max_clock_skew_s * 1000,
        ),
        build_channel(channel_name, deps),
        keyring=keyring,
        signer=signer,
        clock=SystemClock(),
    )
    session = SessionOptions(
        url=settings.amqp_url,
        name=name or f"paymq-worker-{channel_name}",
        heartbeat_s=settings.heartbeat_s,
        connect_timeout_s=settings.connect_timeout_s,
        reconnect_max_delay_s=settings.reconnect_max_delay_s,
    )
    options = ConsumerOptions(
        queue=queue,
        concurrency=settings.worker_concurrency,
        prefetch=settings.prefetch,
        shutdown_grace_s=settings.shutdown_grace_s,
        health_file=settings.health_file,
    )
    return Consumer(session, options, handler.handle, on_stopped=provider.close)


def run_worker(settings: Settings, channel_name: str) -> None:
    """Declare the topology, then consume until SIGTERM or SIGINT has drained the worker."""
    with BrokerAdmin(settings.amqp_url, connect_timeout_s=settings.connect_timeout_s) as admin:
        admin.declare(settings.topology())
    consumer = build_consumer(settings, channel_name)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        consumer.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info(
        "worker for %s: %d in flight, prefetch %d, provider %s",
        channel_name,
        settings.worker_concurrency,
        settings.prefetch,
        settings.provider_url,
    )
    consumer.run()

"""`paymq api serve`: the entry point that builds everything the API's routes need (keys, the
store, the producer with its broker connection), declares the topology, and serves with
uvicorn. `api_app` is the same construction for tests, which run their own uvicorn."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from common.amqp.admin import BrokerAdmin, prepare_topology
from common.amqp.gauges import QueueGauges, topology_queues
from common.clock import SystemClock
from common.details import CHANNELS
from common.envelope import OutboundMessage
from common.errors import BrokerUnavailable, ConfigurationError
from common.keyring import KeyringSource, KeyRole
from common.metrics import Metrics
from common.models import PaymentRequest
from common.privatefiles import Reloading
from common.settings import Settings
from common.trustedkeys import TrustedKeyGauge, trusted_keyring
from producer.api.app import create_app
from producer.api.deps import ApiDeps
from producer.api.intake import Intake
from producer.api.keys import ApiKeys, keys_file
from producer.encode import Draft
from producer.producer import Producer, check_signing_key
from store.database import engine_for, upgrade
from store.gauges import StoreGauges, state_counts
from store.records import Rejection
from store.submissions import Submission, Submissions
from store.views import PaymentViews

logger = logging.getLogger("paymq.api")

#: A readiness probe waits at most this long for the broker.
READY_CONNECT_TIMEOUT_S = 2.0


@contextlib.contextmanager
def api_app(settings: Settings) -> Iterator[FastAPI]:
    keys = keys_file(settings.api_keys_path)
    if not keys.current().keys:
        logger.warning(
            "no API keys in %s yet: every request is refused and /readyz says so until one is "
            "added with `paymq api keys add <id> --channel card` (no restart needed)",
            settings.api_keys_path,
        )
    prepare_topology(
        settings.broker.amqp_url,
        settings.broker.topology(),
        declare=settings.broker.declare_topology,
        connect_timeout_s=settings.broker.connect_timeout_s,
    )
    engine = engine_for(settings.store)
    try:
        upgrade(engine)
        views = PaymentViews(engine)
        submissions = Submissions(engine, SystemClock())
        metrics = Metrics()
        metrics.registry.register(
            StoreGauges(lambda: state_counts(engine), SystemClock(), channels=CHANNELS)
        )
        queues = topology_queues(settings.broker.topology())
        metrics.registry.register(QueueGauges(settings.broker.amqp_url, queues, SystemClock()))
        # Read again when its files change, as workers do: a gateway key retired while the
        # API runs signs nothing more (503), instead of payments the workers would refuse.
        # Each read is logged, as by every process that reads its keyring again.
        keyrings = trusted_keyring(settings.keys.keys_dir)
        metrics.registry.register(TrustedKeyGauge(keyrings.current))
        with Producer.from_settings(settings, name="paymq-api", gateway=True) as producer:
            intake = Intake(
                submissions,
                prepare=_signing_with(producer, keyrings, settings.keys.gateway_key_id),
                publish=producer.publish,
                taken_by_worker=lambda submission: (
                    views.get(submission.payment_id) is not None
                    or rejection_of(views, submission) is not None
                ),
                scope=producer.owner,
            )
            yield create_app(
                ApiDeps(
                    keys=keys.current,
                    intake=intake,
                    describe=views.describe,
                    submission_of=submissions.of_payment,
                    matching=submissions.matching,
                    rejection_of=lambda submission: rejection_of(views, submission),
                    readiness=lambda: readiness(settings, engine, keys, keyrings),
                    metrics=metrics,
                    max_body_bytes=settings.messages.max_body_bytes,
                )
            )
    finally:
        engine.dispose()


def _signing_with(
    producer: Producer, keyrings: KeyringSource, key_id: str
) -> Callable[[Draft, int | None], tuple[PaymentRequest, OutboundMessage]]:
    """The producer's prepare, refused (SigningKeyRetired) while the keyring says the gateway
    key is retired: before anything is signed, stored or published."""

    def prepare(draft: Draft, ttl_s: int | None) -> tuple[PaymentRequest, OutboundMessage]:
        check_signing_key(keyrings.current(), key_id, KeyRole.GATEWAY, running=True)
        return producer.prepare(draft, ttl_s=ttl_s)

    return prepare


def readiness(
    settings: Settings, engine: Engine, keys: Reloading[ApiKeys], keyrings: KeyringSource
) -> Mapping[str, str]:
    checks: dict[str, str] = {}
    count = len(keys.current().keys)
    checks["api_keys"] = "ok" if count else "none: add one with `paymq api keys add`"
    try:
        check_signing_key(
            keyrings.current(), settings.keys.gateway_key_id, KeyRole.GATEWAY, running=True
        )
        checks["signing_key"] = "ok"
    except ConfigurationError as exc:
        checks["signing_key"] = f"unusable: {exc.code}"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except SQLAlchemyError as exc:
        checks["store"] = f"down: {type(exc).__name__}"
    try:
        with BrokerAdmin(
            settings.broker.amqp_url,
            name="paymq-api-ready",
            connect_timeout_s=READY_CONNECT_TIMEOUT_S,
        ):
            checks["broker"] = "ok"
    except BrokerUnavailable as exc:
        checks["broker"] = f"down: {exc.code}"
    return checks


def serve(settings: Settings) -> None:
    with api_app(settings) as app:
        uvicorn.run(
            app,
            host=settings.api.api_host,
            port=settings.api.api_port,
            log_level=settings.observability.log_level.lower(),
            # uvicorn's lines go through paymq's handler (JSON or text, masked), not its own.
            log_config=None,
            # The API's own logs; uvicorn's access log would repeat every request line.
            access_log=False,
        )


def rejection_of(views: PaymentViews, submission: Submission) -> Rejection | None:
    """A worker's refusal of exactly the bytes this submission published."""
    message = submission.message
    return views.rejection_of(message.message_id, hashlib.sha256(message.body).hexdigest())


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document (docs/openapi.json), from the routes alone."""

    def unused(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("not called while describing the API")

    inert = ApiDeps(
        keys=lambda: ApiKeys(()),
        intake=unused,  # type: ignore[arg-type]
        describe=unused,
        submission_of=unused,
        matching=unused,
        rejection_of=unused,
        readiness=unused,
        metrics=Metrics(),
    )
    document: dict[str, Any] = create_app(inert).openapi()
    return document


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"

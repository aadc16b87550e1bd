"""The producer library: payments in, confirmed messages on the broker out.

    with Producer.from_settings(settings) as producer:
        message = producer.prepare(Draft(amount=Money.from_major("10.50", "USD"), ...))
        producer.publish(message)                 # raises unless confirmed
        outcomes = producer.publish_many(messages)  # pipelined confirms, one outcome each

Every message is persistent and mandatory. A message is done only when the broker confirmed
it; an unroutable channel or a refusal is an error, never a silent drop. A message left
unconfirmed (connection lost, timeout, nack) is published again, the same bytes under the same
message id, so consumers can deduplicate, after a pause that doubles from 0.25 s up to
`reconnect_max_delay_s`; after `publish_attempts` it is reported failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from common.amqp.publisher import ThreadedPublisher
from common.amqp.session import SessionOptions
from common.backoff import BackoffPolicy
from common.clock import Clock, SystemClock
from common.envelope import OutboundMessage
from common.errors import (
    ConfigurationError,
    PaymqError,
    PermanentError,
    PublishFailed,
    UnknownKey,
)
from common.keyring import TRUSTED_DIR, Keyring, KeyRole, KeyStatus, TrustedKey
from common.models import PaymentRequest
from common.settings import Settings
from common.signing import Signer
from common.topology import Topology
from common.tracing import traced, tracer
from producer.encode import Draft, SealingKey, encode_request

logger = logging.getLogger("paymq.producer")

#: Pause before the first republish, doubling up to `retry_max_delay_s`, jittered down to half.
REPUBLISH_INITIAL_S = 0.25

OnProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class PublishOutcome:
    message_id: str
    ok: bool
    attempts: int
    error: PaymqError | None = None


@dataclass(frozen=True)
class ProducerOptions:
    topology: Topology
    request_ttl_s: int
    publish_timeout_s: float
    publish_attempts: int
    #: Cap of the pause before a republish (0.25 s, doubling): a broker that nacks or closes
    #: at once is not hammered, and the tries are spread over its recovery.
    retry_max_delay_s: float = 5.0


class Producer:
    def __init__(
        self,
        publisher: ThreadedPublisher,
        signer: Signer,
        options: ProducerOptions,
        *,
        sealing_key: SealingKey | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> None:
        self._publisher = publisher
        self._signer = signer
        #: The signing key's owner as this host's keyring names it (None if it does not): the
        #: scope workers will claim the payments in.
        self.owner = owner
        self._options = options
        self._sealing_key = sealing_key
        self._clock = clock or SystemClock()
        self._republish = BackoffPolicy(
            initial_s=REPUBLISH_INITIAL_S, cap_s=options.retry_max_delay_s, jitter=0.5
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, name: str = "paymq-producer", gateway: bool = False
    ) -> Producer:
        """A producer signing with `producer_key_id`; the HTTP API's (`gateway`) signs with
        `gateway_key_id`, which must be a gateway key in the keyring. SigningKeyRetired, before
        any connection, if the keyring says the key is retired; ConfigurationError if it is
        retiring (check_signing_key)."""
        keyring = Keyring.load(settings.keys.keys_dir / TRUSTED_DIR)
        key_id = settings.keys.gateway_key_id if gateway else settings.keys.producer_key_id
        entry = check_signing_key(keyring, key_id, KeyRole.GATEWAY if gateway else KeyRole.PRODUCER)
        try:
            kid, public_key = keyring.sealing_key("card", settings.keys.sealing_key_id)
            sealing_key: SealingKey | None = SealingKey(kid, public_key)
        except ConfigurationError:
            sealing_key = None  # token-only producers need no sealing key
        publisher = ThreadedPublisher(
            SessionOptions(
                url=settings.broker.amqp_url,
                name=name,
                heartbeat_s=settings.broker.heartbeat_s,
                connect_timeout_s=settings.broker.connect_timeout_s,
                reconnect_max_delay_s=settings.broker.reconnect_max_delay_s,
            )
        )
        options = ProducerOptions(
            topology=settings.broker.topology(),
            request_ttl_s=settings.messages.request_ttl_s,
            publish_timeout_s=settings.broker.publish_timeout_s,
            publish_attempts=settings.broker.publish_attempts,
            retry_max_delay_s=settings.broker.reconnect_max_delay_s,
        )
        signer = Signer.load(settings.keys.keys_dir, key_id)
        # Says which key a rotation left this process signing with (docs/protocol.md#rotation).
        logger.info(
            "%s signs with key %s%s%s",
            name,
            key_id,
            f" (owner {entry.owner})" if entry else " (not in this host's keyring)",
            f", seals card data to {sealing_key.kid}" if sealing_key else "",
        )
        return cls(
            publisher,
            signer,
            options,
            sealing_key=sealing_key,
            owner=entry.owner if entry else None,
        )

    def __enter__(self) -> Producer:
        self._publisher.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._publisher.close()

    def prepare(
        self, draft: Draft, *, ttl_s: int | None = None
    ) -> tuple[PaymentRequest, OutboundMessage]:
        """Validate, seal and sign a payment; nothing is sent yet. The message carries the
        trace context of a "create" span, a child of the caller's current span if any."""
        now_ms = self._clock.now_ms()
        topology = self._options.topology
        with tracer.start_as_current_span(
            f"create {topology.requests_exchange}", kind=SpanKind.PRODUCER
        ) as span:
            request, message = encode_request(
                draft,
                signer=self._signer,
                topology=topology,
                created_at_ms=now_ms,
                expires_at_ms=now_ms + (ttl_s or self._options.request_ttl_s) * 1000,
                sealing_key=self._sealing_key,
            )
            span.set_attributes(
                {
                    "messaging.system": "rabbitmq",
                    "messaging.message.id": message.message_id,
                    "paymq.payment_id": str(request.payment_id),
                    "paymq.channel": request.channel,
                }
            )
            return request, traced(message)

    def publish(self, message: OutboundMessage) -> None:
        """Publish one message; returns once confirmed, raises the reason otherwise."""
        outcome = self.publish_many([message])[0]
        if outcome.error is not None:
            raise outcome.error

    def submit(self, messages: Sequence[OutboundMessage]) -> list[Future[None]]:
        """Hand messages to the connection and return at once: one future per message, done
        when the broker confirmed it (or with the error). No republishing: for callers that
        pace their own publishing and check every future (the benchmark)."""
        return self._publisher.publish_many(messages)

    def publish_many(
        self, messages: Sequence[OutboundMessage], on_progress: OnProgress | None = None
    ) -> list[PublishOutcome]:
        """Publish a batch with confirms pipelined; one outcome per message, in order."""
        total = len(messages)
        outcomes: list[PublishOutcome | None] = [None] * total
        pending = list(range(total))
        errors: dict[int, PaymqError] = {}
        done = 0
        for attempt in range(1, self._options.publish_attempts + 1):
            if not pending:
                break
            if attempt > 1:
                time.sleep(self._retry_delay_s(attempt))
                self._publisher.wait_connected(self._options.publish_timeout_s)
            futures = self._publisher.publish_many([messages[i] for i in pending])
            by_future = dict(zip(futures, pending, strict=True))
            retry: list[int] = []
            for future in self._completed(futures):
                index = by_future.pop(future)
                error = _error_of(future)
                if error is None or isinstance(error, PermanentError):
                    outcomes[index] = PublishOutcome(
                        messages[index].message_id, error is None, attempt, error
                    )
                    done += 1
                    if on_progress is not None:
                        on_progress(done, total)
                else:
                    errors[index] = error
                    retry.append(index)
            for index in by_future.values():  # no confirm within the timeout
                errors[index] = PublishFailed("no confirm within the publish timeout")
                retry.append(index)
            if retry:
                logger.warning(
                    "%d of %d messages unconfirmed (%s); republishing with the same ids",
                    len(retry),
                    len(pending),
                    errors[retry[0]],
                )
            pending = sorted(retry)
        for index in pending:
            outcomes[index] = PublishOutcome(
                messages[index].message_id, False, self._options.publish_attempts, errors[index]
            )
        return [o for o in outcomes if o is not None]

    def _retry_delay_s(self, attempt: int) -> float:
        return self._republish.delay_s(attempt - 1)  # attempt 2 follows the first failure

    def _completed(self, futures: list[Future[None]]) -> Iterator[Future[None]]:
        """Futures as they complete, until all did or the publish timeout ran out."""
        try:
            yield from as_completed(futures, timeout=self._options.publish_timeout_s)
        except TimeoutError:
            return


class SigningKeyRetired(ConfigurationError):
    """The key this process signs with is retired in its keyring: workers would refuse every
    request it signed (key_not_allowed), so nothing is signed with it."""

    code = "signing_key_retired"


def check_signing_key(
    keyring: Keyring, key_id: str, role: KeyRole, *, running: bool = False
) -> TrustedKey | None:
    """The key's entry, if it may sign as `role` here: a gateway key must be one, and a producer
    never signs with a gateway key (its tenants' idempotency scope); a retired key signs nothing
    (SigningKeyRetired), and a process does not start on a retiring one (a signer a rotation's
    switch missed). `running`: the check of a process that already signs with the key, which
    a key phased out since leaves signing (what it signs still verifies) until its restart. A
    key missing from this host's keyring is left to the workers, except the API's: the
    gateway's owner is its scope."""
    variable = "PAYMQ_GATEWAY_KEY_ID" if role is KeyRole.GATEWAY else "PAYMQ_PRODUCER_KEY_ID"
    try:
        key = keyring.get(key_id)
    except UnknownKey as exc:
        if role is KeyRole.GATEWAY:
            raise ConfigurationError(
                f"the HTTP API signs with {key_id!r}, which is not in the keyring: run "
                "`paymq keys init` (it creates the gateway key) or set PAYMQ_GATEWAY_KEY_ID"
            ) from exc
        return None
    if key.role is role:
        if key.status is KeyStatus.RETIRED:
            raise SigningKeyRetired(
                f"key {key_id!r} is retired in the keyring, and workers refuse what it signs: "
                f"sign with an active {role.value} key ({variable}); nothing was published"
            )
        if running and key.status is KeyStatus.RETIRING:
            return key
    try:
        return keyring.signing_entry(key_id, role)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} ({variable})") from None


def _error_of(future: Future[None]) -> PaymqError | None:
    error = future.exception()
    if error is None or isinstance(error, PaymqError):
        return error
    return PublishFailed(f"publish failed: {error!r}")

"""The subscriber library: receive result events and trust only those a worker key signed.

    verifier = ResultVerifier(trusted_keyring(Path("keys")))   # read again when it changes
    with ResultStream(settings.broker.amqp_url, settings.broker.topology(), verifier) as stream:
        for event in stream.events():
            if event is None: continue       # quiet for a second
            if event.result is not None:
                record(event.result)      # verified, parsed PaymentResult
            else:
                alert(event.error)        # forged or malformed: never acted upon

Copies of one event (redeliveries) are byte-identical and share `event_id`: deduplicate on it.

A stream whose connection is lost (its node died, the broker restarted) connects again, to
another node of a cluster if there is one. A durable stream then receives again what it had
not acknowledged; a private one starts a new private queue and does not receive the events
published while it was away (it logs so): consume the notifications queue where that matters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from common.amqp.admin import BrokerAdmin
from common.backoff import Backoff, BackoffPolicy
from common.clock import to_ms
from common.envelope import InboundMessage, open_message
from common.errors import BrokerUnavailable, MalformedMessage, MessageRejected
from common.keyring import KeyringSource, KeyRole
from common.models import PaymentResult
from common.signing import RESULT_TYPE
from common.strictjson import check_strict_json
from common.topology import Topology

logger = logging.getLogger("paymq.subscriber")

#: Pause between two attempts to reconnect a lost stream, doubling up to the cap.
RECONNECT_FIRST_DELAY_S = 0.25
RECONNECT_MAX_DELAY_S = 5.0
RECONNECT = BackoffPolicy(
    initial_s=RECONNECT_FIRST_DELAY_S, cap_s=RECONNECT_MAX_DELAY_S, jitter=0.0
)


class ResultVerifier:
    """`keyring`: a fixed Keyring, or the trusted directory as it is now
    (common.trustedkeys.trusted_keyring), so that a new worker key counts without a restart."""

    def __init__(self, keyring: KeyringSource, *, max_body_bytes: int = 65_536) -> None:
        self._keyring = keyring
        self._max_body_bytes = max_body_bytes

    def verify(self, message: InboundMessage) -> PaymentResult:
        """The parsed result, or a MessageRejected subclass saying why it cannot be trusted."""
        channel = message.routing_key.partition(".")[0]
        verified = open_message(
            message,
            self._keyring.current(),
            expected_type=RESULT_TYPE,
            role=KeyRole.WORKER,
            channel=channel,
            route=message.routing_key,
            max_body_bytes=self._max_body_bytes,
        )
        check_strict_json(verified.body)
        try:
            result = PaymentResult.model_validate_json(verified.body)
        except ValidationError as exc:
            # Not kept as the cause: a validation error quotes the values it refuses.
            raise MalformedMessage(f"invalid result event: {exc.error_count()} errors") from None
        if Topology.result_routing_key(result.channel, result.status.value) != message.routing_key:
            raise MalformedMessage("result body disagrees with its routing key")
        fields = verified.fields
        if str(result.event_id) != fields.message_id:
            raise MalformedMessage("result event id differs from its signed message id")
        if to_ms(result.occurred_at) != fields.created_at_ms or fields.expires_at_ms != 0:
            raise MalformedMessage("result times differ from its signed header")
        return result


@dataclass(frozen=True)
class ResultEvent:
    message: InboundMessage
    result: PaymentResult | None
    error: MessageRejected | None


class ResultStream:
    """Result events as they arrive, from the moment the stream is opened.

    By default a private queue (exclusive, gone with the connection) receives a copy of every
    result, leaving the durable notifications queue to its consumers; open the stream before
    publishing to miss nothing. With `durable=True` the notifications queue itself is consumed,
    each event acked once the caller asks for the next. One thread per stream (pika's
    blocking connection is not thread-safe).
    """

    def __init__(
        self,
        url: str,
        topology: Topology,
        verifier: ResultVerifier,
        *,
        durable: bool = False,
        routing_key: str = "#",
    ) -> None:
        self._url = url
        self._topology = topology
        self._durable = durable
        self._routing_key = routing_key
        self._verifier = verifier
        self._admin = BrokerAdmin(url, name="paymq-subscriber")
        self.queue = self._open_queue()
        #: Times the stream lost its connection and opened a new one.
        self.reconnects = 0

    def _open_queue(self) -> str:
        if self._durable:
            return self._topology.notifications_queue
        return self._admin.private_queue(self._topology.results_exchange, self._routing_key)

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._admin.close()

    def events(self, *, inactivity_timeout_s: float = 1.0) -> Iterator[ResultEvent | None]:
        """Verified events; None after each quiet `inactivity_timeout_s`, to check deadlines
        (also while reconnecting)."""
        while True:
            try:
                for message in self._admin.consume(
                    self.queue, inactivity_timeout_s=inactivity_timeout_s
                ):
                    if message is None:
                        yield None
                        continue
                    try:
                        yield ResultEvent(message, self._verifier.verify(message), None)
                    except MessageRejected as exc:
                        yield ResultEvent(message, None, exc)
                return
            except BrokerUnavailable as exc:
                logger.warning("result stream lost its connection (%s); reconnecting", exc)
            yield from self._reconnect(inactivity_timeout_s)

    def _reconnect(self, inactivity_timeout_s: float) -> Iterator[None]:
        """Open a new connection (on any node that answers), yielding None while none does."""
        self._admin.close()
        backoff = Backoff(RECONNECT)
        while True:
            try:
                self._admin = BrokerAdmin(self._url, name="paymq-subscriber")
                self.queue = self._open_queue()
                break
            except BrokerUnavailable as exc:
                delay_s = backoff.next_delay_s()
                logger.warning("result stream: %s; trying again in %.1f s", exc, delay_s)
                self._admin.close()  # a connection that opened, then lost its private queue
            waited_s = 0.0
            while waited_s < delay_s:
                step_s = min(inactivity_timeout_s, delay_s - waited_s)
                time.sleep(step_s)
                waited_s += step_s
                yield None
        self.reconnects += 1
        if not self._durable:
            logger.warning(
                "result stream reconnected on a new private queue: events published while it "
                "was away are not in it (the notifications queue has them)"
            )

"""Short synchronous broker operations: declare the topology, inspect and drain queues.

These use pika's BlockingConnection: fine for administration, tools and subscribers, never for
the worker's hot path (common/amqp/session.py).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pika
import pika.exceptions

from common.amqp.convert import inbound_from, node_parameters, properties_for
from common.amqp.errors import (
    NOT_FOUND,
    PIKA_ERRORS,
    PRECONDITION_FAILED,
    broker_errors,
    translated,
)
from common.amqp.nodes import redact
from common.backoff import BackoffPolicy
from common.envelope import InboundMessage, OutboundMessage
from common.errors import BrokerUnavailable, ConfigurationError
from common.topology import BindingSpec, QueueSpec, Topology

logger = logging.getLogger("paymq.amqp")

#: Connections lost while declaring (a broker restarting, a forced close) before giving up.
DECLARE_ATTEMPTS = 5
#: Pause before declaring again on a new connection: 0.5 s, doubling up to 2 s.
DECLARE_BACKOFF = BackoffPolicy(initial_s=0.5, cap_s=2.0, jitter=0.0)


@dataclass(frozen=True)
class Delivery:
    """A message consumed with a manual ack: settle it with `ack` or `reject` by its tag."""

    tag: int
    message: InboundMessage


@dataclass(frozen=True)
class QueueStats:
    name: str
    messages: int
    consumers: int


def prepare_topology(
    url: str, topology: Topology, *, declare: bool = True, connect_timeout_s: float = 10.0
) -> None:
    """Declare the topology at start-up, or only check that it exists where the process's
    broker user may not declare it (`declare=False`, PAYMQ_DECLARE_TOPOLOGY), on a new
    connection each time the one in use is lost meanwhile (both are idempotent). A broker that
    cannot be reached at all raises BrokerUnavailable at once; what the broker refuses
    (arguments that differ, a permission, a missing queue: a ConfigurationError) is not
    retried. A queue kept with its own arguments is logged."""
    for attempt in range(1, DECLARE_ATTEMPTS + 1):
        with BrokerAdmin(url, connect_timeout_s=connect_timeout_s) as admin:
            try:
                if declare:
                    for kept in admin.declare(topology):
                        logger.warning("%s", kept)
                else:
                    admin.check(topology)
                return
            except BrokerUnavailable as exc:
                lost = exc.__cause__ or exc
                if isinstance(lost, pika.exceptions.ChannelClosedByBroker):
                    raise  # refused: a new connection would be refused again
                if attempt == DECLARE_ATTEMPTS:
                    raise BrokerUnavailable(
                        f"connection to {redact(url)} lost while declaring: {lost!r}"
                    ) from lost
                logger.warning("connection lost while declaring (%r); declaring again", lost)
        time.sleep(DECLARE_BACKOFF.delay_s(attempt))


class BrokerAdmin:
    """One blocking connection and channel; use as a context manager."""

    def __init__(self, url: str, *, name: str = "paymq-admin", connect_timeout_s: float = 10.0):
        params = node_parameters(
            url, heartbeat_s=60, connect_timeout_s=connect_timeout_s, name=name
        )
        with broker_errors(connecting_to=url):
            self._connection = pika.BlockingConnection(params)
            # A broker going down between the connection and the channel is unreachable too,
            # not an unexpected error (a worker starting just then exits 2 and is restarted).
            self._channel = self._connection.channel()
        self._confirming = False

    def __enter__(self) -> BrokerAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError):
            if self._connection.is_open:
                self._connection.close()

    def declare(self, topology: Topology) -> list[str]:
        """Declare every exchange, queue and binding; idempotent for the same topology. Says
        which queues were kept with other arguments than the topology's (see
        `QueueSpec.existing_arguments_kept`), and how to bring them in line."""
        kept = []
        with broker_errors(declaring=True):
            for exchange in topology.exchanges():
                self._channel.exchange_declare(exchange.name, exchange.type, durable=True)
            for queue in topology.queues():
                if queue.existing_arguments_kept:
                    refusal = self._declare_unless_declared_otherwise(queue)
                    if refusal is not None:
                        kept.append(_kept_message(queue, refusal))
                else:
                    self._channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
            for binding in topology.bindings():
                self._channel.queue_bind(
                    binding.queue, binding.exchange, routing_key=binding.routing_key
                )
        return kept

    def _declare_unless_declared_otherwise(self, queue: QueueSpec) -> str | None:
        """Declare the queue; if it exists with other arguments, leave it and say what the
        broker said (the refusal closes the channel: a new one carries on)."""
        try:
            self._channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != PRECONDITION_FAILED:
                raise
            self._channel = self._connection.channel()
            self._confirming = False
            return str(exc.reply_text)
        return None

    def check(self, topology: Topology) -> None:
        """Check that every exchange and queue exists (passive declares, which need no
        permission; arguments and bindings are not compared). ConfigurationError names the
        first that does not."""
        ch = self._channel
        names = [("exchange", e.name) for e in topology.exchanges()]
        names += [("queue", q.name) for q in topology.queues()]
        for kind, name in names:
            try:
                if kind == "exchange":
                    ch.exchange_declare(name, passive=True)
                else:
                    ch.queue_declare(name, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != NOT_FOUND:
                    raise translated(exc) from exc
                raise ConfigurationError(
                    f"{kind} {name} does not exist, and this process does not declare the "
                    "topology (PAYMQ_DECLARE_TOPOLOGY is false): declare it with `paymq "
                    "topology declare` as the broker's admin user"
                ) from exc
            except PIKA_ERRORS as exc:
                raise translated(exc) from exc

    def declare_queue(self, queue: QueueSpec, binding: BindingSpec) -> None:
        """Declare one queue of the topology that only its own consumer declares."""
        with broker_errors(declaring=True):
            self._channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
            self._channel.queue_bind(binding.queue, binding.exchange, binding.routing_key)

    def delete_queue(self, name: str) -> None:
        with broker_errors():
            self._channel.queue_delete(name)

    def delete(self, topology: Topology) -> None:
        """Remove every exchange and queue of the topology (`paymq topology delete`, tests,
        demo clean-up), the webhooks queue too: only `paymq webhooks run` declares it, but it
        is the prefix's all the same. Deleting a queue that is not there is no error."""
        ch = self._channel
        with broker_errors():
            for name in [*(queue.name for queue in topology.queues()), topology.webhooks_queue]:
                ch.queue_delete(name)
            for exchange in topology.exchanges():
                ch.exchange_delete(exchange.name)

    def stats(self, queue: str) -> QueueStats:
        """Depth and consumers of `queue`; ConfigurationError if it does not exist (the
        channel is closed then), BrokerUnavailable if the connection is lost."""
        with broker_errors(queue=queue):
            frame = self._channel.queue_declare(queue, passive=True)
        return QueueStats(queue, frame.method.message_count, frame.method.consumer_count)

    def get(self, queue: str, *, ack: bool = True) -> InboundMessage | None:
        """Take one message (basic.get); None if the queue is empty. ConfigurationError if
        the queue does not exist, BrokerUnavailable if the connection is lost."""
        with broker_errors(queue=queue):
            method, properties, body = self._channel.basic_get(queue, auto_ack=False)
            if method is None:
                return None
            message = inbound_from(method, properties, body)
            if ack:
                self._channel.basic_ack(method.delivery_tag)
            else:
                self._channel.basic_reject(method.delivery_tag, requeue=True)
        return message

    def drain(self, queue: str) -> list[InboundMessage]:
        """Every message currently in `queue`, taken out of it (inspection, demo, tests)."""
        messages = []
        while (message := self.get(queue)) is not None:
            messages.append(message)
        return messages

    def purge(self, queue: str) -> int:
        with broker_errors(queue=queue):
            return int(self._channel.queue_purge(queue).method.message_count)

    def publish(self, message: OutboundMessage) -> None:
        """Publish one message and wait for its confirm (tools and tests, not throughput):
        Unroutable if no queue is bound for it, PublishFailed if the broker nacks it."""
        with broker_errors():
            if not self._confirming:
                self._channel.confirm_delivery()
                self._confirming = True
            self._channel.basic_publish(
                message.exchange,
                message.routing_key,
                message.body,
                properties_for(message),
                mandatory=message.mandatory,
            )

    def private_queue(self, exchange: str, routing_key: str = "#") -> str:
        """A server-named exclusive queue bound to `exchange`: gone when this connection is.
        A lost connection raises BrokerUnavailable (a reconnecting subscriber tries again)."""
        with broker_errors():
            name = self._channel.queue_declare("", exclusive=True).method.queue
            self._channel.queue_bind(name, exchange, routing_key=routing_key)
        return str(name)

    def consume(
        self, queue: str, *, prefetch: int = 200, inactivity_timeout_s: float = 1.0
    ) -> Iterator[InboundMessage | None]:
        """Yield messages as they arrive; yields None after `inactivity_timeout_s` of silence so
        callers can check deadlines.

        A message is acked only once the caller has resumed the generator after it, i.e. has
        handled it. Acks go out together (one `multiple` ack per quarter of the prefetch window,
        and whenever the queue falls quiet): one ack frame per message costs more CPU than the
        rest of consuming. A crash before an ack means redelivery, never loss.
        A lost connection or channel raises BrokerUnavailable.
        """
        channel = self._channel
        batch = max(1, prefetch // 4)
        handled_tag, unacked = 0, 0
        try:
            # Only pika's errors are mapped: what the caller raises never enters a generator.
            with broker_errors(queue=queue):
                channel.basic_qos(prefetch_count=prefetch)
                for method, properties, body in channel.consume(
                    queue, inactivity_timeout=inactivity_timeout_s
                ):
                    if method is None:
                        if unacked:
                            channel.basic_ack(handled_tag, multiple=True)
                            unacked = 0
                        yield None
                        continue
                    yield inbound_from(method, properties, body)
                    handled_tag, unacked = method.delivery_tag, unacked + 1
                    if unacked >= batch:
                        channel.basic_ack(handled_tag, multiple=True)
                        unacked = 0
        finally:
            if unacked and channel.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError):
                    channel.basic_ack(handled_tag, multiple=True)

    def deliveries(
        self, queue: str, *, prefetch: int, inactivity_timeout_s: float = 1.0
    ) -> Iterator[Delivery | None]:
        """Yield messages as they arrive, each to be settled by `ack` or `reject`; None after
        `inactivity_timeout_s` of silence. A lost connection raises BrokerUnavailable; whatever
        was not settled comes back to this queue's consumers."""
        with broker_errors():
            self._channel.basic_qos(prefetch_count=prefetch)
            for method, properties, body in self._channel.consume(
                queue, inactivity_timeout=inactivity_timeout_s
            ):
                if method is None:
                    yield None
                    continue
                yield Delivery(method.delivery_tag, inbound_from(method, properties, body))

    def pause(self, duration_s: float) -> None:
        """Wait while the connection keeps its heartbeats (a plain sleep would starve them)."""
        with broker_errors():
            self._connection.sleep(duration_s)

    def ack(self, tag: int) -> None:
        with broker_errors():
            self._channel.basic_ack(tag)

    def reject(self, tag: int) -> None:
        """Refuse a delivery without requeueing it: the queue dead-letters it."""
        with broker_errors():
            self._channel.basic_reject(tag, requeue=False)


def _kept_message(queue: QueueSpec, refusal: str) -> str:
    """What to tell an operator about a queue kept with its own arguments: a length limit
    can still be given in place, by an operator policy (it adds to any policy of theirs)."""
    kept = (
        f"queue {queue.name} exists with other arguments than this paymq declares, and is "
        f"kept as it is ({refusal})"
    )
    limit = queue.arguments.get("x-max-length")
    if limit is None:
        return kept
    return (
        f"{kept}. Its arguments cannot change in place; to give it the length limit of "
        f"{limit} now: rabbitmqctl set_operator_policy {queue.name}-limit "
        f"'^{re.escape(queue.name)}$' '{{\"max-length\":{limit}}}' --apply-to queues "
        "(docs/protocol.md, Topology)"
    )

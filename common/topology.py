"""Every exchange, queue and binding paymq uses: names and arguments in one place.

Redeclaring a queue with other arguments is a channel error (406), so nothing else in paymq
spells a queue argument. The arguments are ones RabbitMQ 3.10 and 4.x both accept.

    <p>.requests (direct) -<channel>-> <p>.work.<channel>  quorum, delivery limit, DLX
    <p>.retry.<N>ms (fanout) --------> <p>.retry.<N>ms     quorum, TTL N ms, DLX <p>.requests
                                          (the routing key, i.e. the channel, survives expiry)
    <p>.dead-letter (fanout) --------> <p>.dead-letter     quorum
    <p>.results (topic) -----#-------> <p>.notifications   quorum, length limit (drop-head);
                                                            key <channel>.<status>
                        -----#-------> <p>.webhooks        quorum, delivery limit, DLX
                                          (declared by `paymq webhooks run` only, see below)

The notifications queue is the one bound to the results exchange wherever paymq runs, so every
result publish (persistent, mandatory) has a queue to land in; nobody need consume it. Its
length limit drops the oldest event once full, and never refuses a publish: a queue with
reject-publish overflow nacks the publish, even though the other queues bound to the results
exchange took it, and a worker whose result publish is nacked returns the payment's request to
its queue instead of acking it, so one full queue would hold back every payment. An existing
notifications queue declared with other arguments (by an earlier paymq, without a limit) is
kept as it is: see `QueueSpec.existing_arguments_kept`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.details import CHANNELS


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    type: str  # "direct" | "fanout" | "topic"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: dict[str, str | int] = field(default_factory=dict)
    #: A queue that exists with other arguments is kept as it is, with a warning, instead of
    #: failing the declaration (RabbitMQ cannot change a queue's arguments in place). Only for
    #: a queue whose arguments no payment depends on: the notifications queue.
    existing_arguments_kept: bool = False


@dataclass(frozen=True)
class BindingSpec:
    queue: str
    exchange: str
    routing_key: str


# at-least-once dead-lettering needs reject-publish overflow; without it quorum queues
# dead-letter at most once and a message can vanish between the two queues.
_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


@dataclass(frozen=True)
class Topology:
    prefix: str = "paymq"
    channels: tuple[str, ...] = CHANNELS
    #: One retry queue per delay: per-message TTL only expires at the queue head.
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000, 600_000)
    #: Deliveries of one message before the quorum queue dead-letters it as poison.
    delivery_limit: int = 100
    #: Members of each quorum queue when it is created (x-quorum-initial-group-size); None
    #: leaves it to RabbitMQ: one per node, up to 3 (its quorum_cluster_size).
    quorum_replicas: int | None = None
    #: Result events the notifications queue holds; past it, the oldest is dropped.
    notifications_max_length: int = 100_000

    def __post_init__(self) -> None:
        if not self.retry_delays_ms or any(d <= 0 for d in self.retry_delays_ms):
            raise ValueError("retry_delays_ms must be positive and non-empty")
        if list(self.retry_delays_ms) != sorted(set(self.retry_delays_ms)):
            raise ValueError("retry_delays_ms must be strictly increasing")
        if self.quorum_replicas is not None and self.quorum_replicas < 1:
            raise ValueError("quorum_replicas must be at least 1")
        if self.notifications_max_length < 1:
            raise ValueError("notifications_max_length must be at least 1")

    @property
    def requests_exchange(self) -> str:
        return f"{self.prefix}.requests"

    @property
    def results_exchange(self) -> str:
        return f"{self.prefix}.results"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def notifications_queue(self) -> str:
        return f"{self.prefix}.notifications"

    @property
    def webhooks_queue(self) -> str:
        return f"{self.prefix}.webhooks"

    def work_queue(self, channel: str) -> str:
        if channel not in self.channels:
            raise ValueError(f"unknown channel {channel!r}; known: {', '.join(self.channels)}")
        return f"{self.prefix}.work.{channel}"

    def retry_exchange(self, delay_ms: int) -> str:
        if delay_ms not in self.retry_delays_ms:
            raise ValueError(f"no retry tier of {delay_ms} ms")
        return f"{self.prefix}.retry.{delay_ms}ms"

    @staticmethod
    def result_routing_key(channel: str, status: str) -> str:
        return f"{channel}.{status}"

    def exchanges(self) -> list[ExchangeSpec]:
        return [
            ExchangeSpec(self.requests_exchange, "direct"),
            ExchangeSpec(self.results_exchange, "topic"),
            ExchangeSpec(self.dead_letter_exchange, "fanout"),
            *(ExchangeSpec(self.retry_exchange(d), "fanout") for d in self.retry_delays_ms),
        ]

    @property
    def _quorum(self) -> dict[str, str | int]:
        arguments: dict[str, str | int] = {"x-queue-type": "quorum"}
        if self.quorum_replicas is not None:
            arguments["x-quorum-initial-group-size"] = self.quorum_replicas
        return arguments

    def queues(self) -> list[QueueSpec]:
        quorum = self._quorum
        work = [
            QueueSpec(
                self.work_queue(channel),
                {
                    **quorum,
                    "x-delivery-limit": self.delivery_limit,
                    "x-dead-letter-exchange": self.dead_letter_exchange,
                    **_AT_LEAST_ONCE,
                },
            )
            for channel in self.channels
        ]
        retry = [
            QueueSpec(
                self.retry_exchange(delay_ms),
                {
                    **quorum,
                    "x-message-ttl": delay_ms,
                    "x-dead-letter-exchange": self.requests_exchange,
                    **_AT_LEAST_ONCE,
                },
            )
            for delay_ms in self.retry_delays_ms
        ]
        return [
            *work,
            *retry,
            QueueSpec(self.dead_letter_queue, dict(quorum)),
            self.notifications_queue_spec(),
        ]

    def notifications_queue_spec(self) -> QueueSpec:
        """Every result event, for whoever consumes it, up to a length limit past which the
        oldest is dropped (see the module's doc for why never reject-publish)."""
        return QueueSpec(
            self.notifications_queue,
            {
                **self._quorum,
                "x-max-length": self.notifications_max_length,
                "x-overflow": "drop-head",
            },
            existing_arguments_kept=True,
        )

    def webhooks_queue_spec(self) -> QueueSpec:
        """The webhook sender's queue. Not in `queues()`: only `paymq webhooks run` declares
        it, since a queue that nobody consumes would grow forever where webhooks are unused."""
        return QueueSpec(
            self.webhooks_queue,
            {
                **self._quorum,
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dead_letter_exchange,
                **_AT_LEAST_ONCE,
            },
        )

    def webhooks_binding(self) -> BindingSpec:
        return BindingSpec(self.webhooks_queue, self.results_exchange, "#")

    def bindings(self) -> list[BindingSpec]:
        return [
            *(BindingSpec(self.work_queue(c), self.requests_exchange, c) for c in self.channels),
            *(
                BindingSpec(self.retry_exchange(d), self.retry_exchange(d), "")
                for d in self.retry_delays_ms
            ),
            BindingSpec(self.dead_letter_queue, self.dead_letter_exchange, ""),
            BindingSpec(self.notifications_queue, self.results_exchange, "#"),
        ]

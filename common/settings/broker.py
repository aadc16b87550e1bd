"""The broker section of the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator

from common.amqp.nodes import InvalidBrokerAddress, check_address, redact
from common.details import CHANNELS
from common.settings.section import PositiveFloat, PositiveInt, Section, readers
from common.topology import Topology

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class BrokerSettings(Section):
    """The broker: where RabbitMQ is, how a process keeps its connection, and the topology it
    declares (names, retry tiers, quorum queue arguments)."""

    heading = "Broker"
    read_by = ("worker", "reconciler", "api", "webhooks", "producer", "cli")
    from_files = ("amqp_url",)

    amqp_url: str = Field(
        DEFAULT_AMQP_URL,
        validation_alias=AliasChoices("PAYMQ_AMQP_URL", "AMQP_URL", "RABBITMQ_URL"),
        description="RabbitMQ URL (amqp:// or amqps://), or a cluster's nodes as a "
        "comma-separated list of URLs: each process takes them in an order of its own and "
        "moves to the next node when its own goes (a comma in a password is written %2C). "
        "Also read from AMQP_URL or RABBITMQ_URL.",
    )
    amqp_url_file: Path | None = Field(
        None,
        description="A file holding the broker URL instead, for its password (a Docker or "
        "Kubernetes secret, e.g. /run/secrets/amqp_url); read once at start-up. Setting it "
        "and the URL is an error.",
    )
    topology_prefix: str = Field(
        "paymq",
        pattern=r"^[a-z0-9][a-z0-9_.\-]{0,40}$",
        description="Prefix of every exchange and queue name.",
    )
    declare_topology: bool = Field(
        True,
        description="Processes declare the exchanges and queues at start (declaring is "
        "idempotent). Set false where their broker users may not configure them (one user "
        "per role, `paymq topology users`): each process then only checks that they exist, "
        "and stops with an error naming `paymq topology declare`, to run as the admin user, "
        "when one does not. The webhooks process declares its own queue either way.",
        json_schema_extra=readers("worker", "reconciler", "api", "webhooks"),
    )
    heartbeat_s: PositiveInt = Field(
        30,
        description="AMQP heartbeat interval.",
        json_schema_extra=readers("worker", "reconciler", "api", "producer"),
    )
    connect_timeout_s: PositiveFloat = Field(
        10.0,
        description="Broker connect timeout.",
        json_schema_extra=readers("worker", "reconciler", "api", "webhooks", "producer"),
    )
    publish_timeout_s: PositiveFloat = Field(
        30.0,
        description="How long a publish waits for its confirm before it is retried.",
        json_schema_extra=readers("reconciler", "api", "producer"),
    )
    publish_attempts: PositiveInt = Field(
        5,
        description="Publishes of one message (same message id) before giving up; the pause "
        "between two doubles from 0.25 s up to reconnect_max_delay_s.",
        json_schema_extra=readers("api", "producer"),
    )
    reconnect_max_delay_s: PositiveFloat = Field(
        30.0,
        description="Cap of the exponential back-off between reconnection attempts.",
        json_schema_extra=readers("worker", "reconciler", "api", "webhooks", "producer"),
    )
    retry_delays_ms: tuple[PositiveInt, ...] = Field(
        (1_000, 5_000, 30_000, 120_000, 600_000),
        description="Retry tiers (one delay queue each), used in order: capped exponential "
        "back-off. JSON list in the environment, e.g. [1000,5000].",
    )
    delivery_limit: PositiveInt = Field(
        100,
        description="Deliveries of one message before the work queue dead-letters it: only the "
        "backstop for a message that kills every worker before it is claimed (poison after "
        "the claim is caught by poison_after_takeovers). RabbitMQ before 4.3 also counts "
        "deliveries returned by lost connections, so it is high, and a request delivered 3 "
        "times goes back as a fresh copy before it is handled (docs/faults.md).",
    )
    quorum_replicas: PositiveInt | None = Field(
        None,
        description="Members of each quorum queue when it is created "
        "(x-quorum-initial-group-size). Unset: RabbitMQ's own choice, one per node up to 3 "
        "(its quorum_cluster_size). Fixed once a queue exists, since RabbitMQ compares it on "
        "every declare: change an existing queue's members with `rabbitmq-queues grow` and "
        "`shrink` instead (docs/scaling.md).",
    )
    notifications_max_length: PositiveInt = Field(
        100_000,
        description="Result events the notifications queue (<prefix>.notifications) keeps for "
        "its consumer; once full, the oldest is dropped (x-max-length, drop-head), so a queue "
        "nobody consumes stops growing and never holds back a result publish. Fixed when the "
        "queue is created; a queue declared by an earlier paymq without a limit is kept as it "
        "is: bound it with the operator policy of docs/protocol.md.",
    )
    management_url: str | None = Field(
        None,
        description="RabbitMQ management API (http:// or https://, comma-separated for a "
        "cluster): `paymq topology status` reads queue leaders and members there, and "
        "`topology declare` the cluster's size. Unset: port 15672 (15671 for amqps://) of each "
        "broker node, with the broker URL's user and password.",
        json_schema_extra=readers(
            "cli",
        ),
    )

    @field_validator("amqp_url")
    @classmethod
    def _broker_address(cls, address: str) -> str:
        return check_address(address)

    @model_validator(mode="after")
    def _amqp_url_from_its_file(self) -> Self:
        text = self._text_from_file("amqp_url")
        if text is not None:
            try:
                self._put_from_file("amqp_url", check_address(text))
            except InvalidBrokerAddress as exc:  # its message masks the password
                raise ValueError(f"PAYMQ_AMQP_URL_FILE: {exc}") from None
        return self

    @field_validator("management_url")
    @classmethod
    def _management_address(cls, address: str | None) -> str | None:
        if address is None:
            return None
        for url in address.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{redact(url.strip())} is not an http:// or https:// URL")
        return address

    def topology(self) -> Topology:
        return Topology(
            prefix=self.topology_prefix,
            channels=CHANNELS,
            retry_delays_ms=tuple(self.retry_delays_ms),
            delivery_limit=self.delivery_limit,
            quorum_replicas=self.quorum_replicas,
            notifications_max_length=self.notifications_max_length,
        )

"""paymq's configuration: one class, read once at the entry point and passed down.

Every field reads from the environment variable `PAYMQ_<FIELD>` (and from a `.env` file in the
working directory). The broker URL also honours the conventional `AMQP_URL` and `RABBITMQ_URL`.
docs/configuration.md is generated from this class (`paymq config docs`) and a test keeps it
current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.amqp.nodes import check_address, redact
from common.details import CHANNELS, EVM_CHAIN_IDS, Network
from common.errors import ConfigurationError
from common.money import DIGITAL_ASSETS
from common.topology import Topology

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: The chain id anvil and Hardhat start with: the default of the ethereum-devnet network.
ANVIL_CHAIN_ID = 31337

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
ProviderName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMQ_", env_file=".env", extra="ignore", frozen=True
    )

    # --- broker ---
    amqp_url: str = Field(
        DEFAULT_AMQP_URL,
        validation_alias=AliasChoices("PAYMQ_AMQP_URL", "AMQP_URL", "RABBITMQ_URL"),
        description="RabbitMQ URL (amqp:// or amqps://), or a cluster's nodes as a "
        "comma-separated list of URLs: each process takes them in an order of its own and "
        "moves to the next node when its own goes (a comma in a password is written %2C). "
        "Also read from AMQP_URL or RABBITMQ_URL.",
    )
    topology_prefix: str = Field(
        "paymq",
        pattern=r"^[a-z0-9][a-z0-9_.\-]{0,40}$",
        description="Prefix of every exchange and queue name.",
    )
    heartbeat_s: PositiveInt = Field(30, description="AMQP heartbeat interval.")
    connect_timeout_s: PositiveFloat = Field(10.0, description="Broker connect timeout.")
    publish_timeout_s: PositiveFloat = Field(
        30.0, description="How long a publish waits for its confirm before it is retried."
    )
    publish_attempts: PositiveInt = Field(
        5,
        description="Publishes of one message (same message id) before giving up; the pause "
        "between two doubles from 0.25 s up to reconnect_max_delay_s.",
    )
    reconnect_max_delay_s: PositiveFloat = Field(
        30.0, description="Cap of the exponential back-off between reconnection attempts."
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
    management_url: str | None = Field(
        None,
        description="RabbitMQ management API (http:// or https://, comma-separated for a "
        "cluster): `paymq topology status` reads queue leaders and members there, and "
        "`topology declare` the cluster's size. Unset: port 15672 (15671 for amqps://) of each "
        "broker node, with the broker URL's user and password.",
    )
    poison_after_takeovers: PositiveInt = Field(
        5,
        description="A payment whose claim had to be taken over this many times (its worker "
        "died holding it each time) is not executed again: it goes in doubt, with a result "
        "event, to the reconciler and to the dead-letter queue (code poison_message).",
    )

    # --- keys ---
    keys_dir: Path = Field(
        Path("keys"),
        description="Directory holding trusted/ (public keys: the keyring) and private/.",
    )
    producer_key_id: str = Field("producer-1", description="Key that signs payment requests.")
    gateway_key_id: str = Field(
        "gateway-1",
        description="Key the HTTP API signs its payments with: a `gateway` key, whose owner "
        "holds no producer key, so API tenants and producers never share idempotency keys.",
    )
    worker_key_id: str = Field("worker-1", description="Key that signs result events.")
    sealing_key_id: str | None = Field(
        None,
        description="Card-worker key that producers seal card data for; needed only while "
        "several are active (rotation).",
    )

    # --- messages ---
    max_body_bytes: PositiveInt = Field(
        65_536,
        description="Larger message bodies are rejected before parsing, and larger HTTP API "
        "bodies with 413 while they are read, before authentication.",
    )
    request_ttl_s: PositiveInt = Field(
        86_400,
        description="Default lifetime of a payment request: long enough to cover backlogs, "
        "retries and broker outages.",
    )
    max_clock_skew_s: PositiveInt = Field(
        300, description="A request created further in the future than this is rejected."
    )

    # --- workers ---
    worker_concurrency: PositiveInt = Field(
        32, description="Provider calls in flight per worker process (thread pool size)."
    )
    worker_prefetch: PositiveInt | None = Field(
        None, description="Unacked deliveries per worker; default: worker_concurrency."
    )
    max_attempts: PositiveInt = Field(
        5, description="Provider attempts for one payment before it is `failed` (or in doubt)."
    )
    shutdown_grace_s: PositiveFloat = Field(
        30.0, description="On SIGTERM, how long in-flight payments may take to finish."
    )
    health_file: Path | None = Field(
        None, description="If set, a worker touches this file while it is consuming."
    )

    # --- payment store ---
    database_url: str = Field(
        "sqlite:///paymq.db",
        description="Payment store: a SQLite file (zero set-up, one host) or a PostgreSQL URL "
        "(postgresql+psycopg://user@host/db) for several worker hosts.",
    )
    claim_lease_s: PositiveFloat = Field(
        60.0,
        description="How long a worker's claim on a payment lasts; a worker that died "
        "mid-payment holds it no longer than this. Keep it above the provider timeouts.",
    )
    reconcile_schedule_s: tuple[PositiveFloat, ...] = Field(
        (60.0, 300.0, 1800.0, 7200.0, 21600.0),
        description="When the reconciler looks at a pending or in-doubt payment again: minutes, "
        "then hours. An in-doubt payment the provider never heard of by the last check failed.",
    )
    payer_action_timeout_s: PositiveFloat = Field(
        3600.0,
        description="A payment still waiting for its payer (3-D Secure) this long after it was "
        "created is canceled at the provider by the reconciler and declined with code "
        "payer_action_expired. It is checked on the reconcile schedule.",
    )
    reconcile_interval_s: PositiveFloat = Field(
        5.0, description="How often a reconciler looks for payments due for a check."
    )
    republish_after_s: PositiveFloat = Field(
        10.0,
        description="A stored result whose publish the broker has not confirmed this long "
        "(its worker crashed, lost its channel, or had its delivery dead-lettered) is "
        "published again from the store, byte for byte, by a reconciler.",
    )
    abandoned_claim_after_s: PositiveFloat = Field(
        1800.0,
        description="A claimed payment that nobody has touched this long (its delivery was "
        "dead-lettered or lost) is put in doubt by a reconciler, with a result event, and its "
        "provider is asked what happened. Must exceed the longest retry tier plus the claim "
        "lease; a request that waits longer than this in a backlog after its first attempt is "
        "settled from the provider's records instead of being executed again.",
    )
    database_connect_timeout_s: PositiveFloat = Field(
        5.0, description="PostgreSQL: how long connecting to the payment store may take."
    )
    database_timeout_s: PositiveFloat = Field(
        10.0,
        description="The longest each step of a store call may wait: PostgreSQL's "
        "statement_timeout and lock_timeout, and (with TCP keepalives and tcp_user_timeout) a "
        "silent network link; SQLite's busy timeout on a locked file; a free pooled "
        "connection. A call on a dead link (the pooled connection's check, a new connection, "
        "the statement) fails within about twice this plus the connect timeout. Then the store "
        "counts as unavailable: the payment waits in a retry tier, nothing is decided.",
    )
    worker_reconciles: bool = Field(
        True, description="Workers also run the reconciler (besides `paymq reconcile`)."
    )

    # --- fault injection (tests only) ---
    crash_at: str | None = Field(
        None,
        description="Fault injection only: a worker exits at this step of a payment "
        "(after_provider_call, after_store_commit, after_result_publish, before_ack).",
    )
    crash_every: PositiveInt = Field(
        1, description="Fault injection only: crash on every n-th payment reaching crash_at."
    )
    crash_reference_prefix: str | None = Field(
        None,
        description="Fault injection only: crash only on payments whose merchant reference "
        "starts with this (a payment that kills every worker that takes it).",
    )
    stall_at: str | None = Field(
        None,
        description="Fault injection only: a worker thread holds still at this step of a "
        "payment (the crash points' names) for stall_s, then goes on.",
    )
    stall_s: PositiveFloat = Field(
        10.0, description="Fault injection only: how long a thread holds still at stall_at."
    )
    stall_every: PositiveInt = Field(
        1, description="Fault injection only: stall on every n-th payment reaching stall_at."
    )

    # --- providers ---
    card_providers: tuple[ProviderName, ...] = Field(
        ("sandbox",),
        min_length=1,
        description="Card providers in the order they are tried (sandbox, stripe). A payment "
        "goes to the next one only when the one before surely did not act (connection refused, "
        "503 before any effect, 429, circuit open); never after an unknown outcome. JSON list "
        'in the environment, e.g. ["stripe","sandbox"].',
    )
    payout_providers: tuple[ProviderName, ...] = Field(
        ("sandbox",),
        min_length=1,
        description="Digital-currency payout providers, in the order they are tried "
        "(sandbox, ethereum). ethereum pays out on chain from a hot wallet "
        "(docs/ethereum.md).",
    )
    provider_url: str = Field(
        "http://127.0.0.1:8099", description="Base URL of the sandbox provider."
    )
    provider_connect_timeout_s: PositiveFloat = Field(
        3.0, description="Connect timeout of every provider call."
    )
    provider_read_timeout_s: PositiveFloat = Field(
        10.0,
        description="Read timeout of every provider call; a timeout after sending is in doubt.",
    )
    stripe_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PAYMQ_STRIPE_API_KEY", "STRIPE_API_KEY"),
        description="Stripe secret key (sk_live_..., sk_test_...). Also read from "
        "STRIPE_API_KEY. Never logged. Prefer stripe_api_key_file.",
    )
    stripe_api_key_file: Path | None = Field(
        None,
        description="A file holding the Stripe secret key (a Docker or Kubernetes secret, "
        "e.g. /run/secrets/stripe_api_key); used when stripe_api_key is not set.",
    )
    stripe_api_base: str = Field(
        "https://api.stripe.com",
        pattern=r"^https?://",
        description="Stripe API base URL: the real API, or an emulator such as localstripe.",
    )
    breaker_failures: PositiveInt = Field(
        5,
        description="Consecutive failures (refused, timeout, reset, 5xx) that open a "
        "provider's circuit in a worker process.",
    )
    breaker_open_s: PositiveFloat = Field(
        30.0,
        description="How long an open circuit stays open; then one real call probes the "
        "provider, and closes the circuit if it succeeds.",
    )

    ethereum_rpc_url: str = Field(
        "http://127.0.0.1:8545",
        pattern=r"^https?://",
        description="JSON-RPC URL of the Ethereum node the ethereum provider uses (a local "
        "anvil or geth, or a provider's URL for a real network).",
    )
    ethereum_network: Network = Field(
        "ethereum-devnet",
        description="The network the ethereum provider pays out on; a payout naming another "
        "network fails without a transaction.",
    )
    ethereum_chain_id: PositiveInt | None = Field(
        None,
        description="The chain id the node must report before anything is signed; every "
        "transaction is signed for it (EIP-155). Default: the network's (1 ethereum, "
        "11155111 ethereum-sepolia, 31337 ethereum-devnet, anvil's).",
    )
    ethereum_private_key: SecretStr | None = Field(
        None,
        description="The hot wallet's private key (0x + 64 hex digits). Never logged. Prefer "
        "ethereum_private_key_file.",
    )
    ethereum_private_key_file: Path | None = Field(
        None,
        description="A file holding the hot wallet's private key (a Docker or Kubernetes "
        "secret); used when ethereum_private_key is not set.",
    )
    ethereum_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="ERC-20 payouts: asset code -> token contract address (EIP-55), e.g. "
        '{"USDC":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"} on ethereum. The token\'s '
        "decimals are checked against the asset's before its first payout. Default: ETH only.",
    )
    ethereum_confirmations: PositiveInt = Field(
        12,
        description="Blocks that must include or follow a payout's transaction before it is "
        "succeeded; until then it is pending.",
    )
    ethereum_max_fee_per_gas_wei: PositiveInt = Field(
        200_000_000_000,
        description="EIP-1559 fee cap (200 gwei): a payout is not signed while the base fee "
        "plus tip would exceed it; it waits in the retry tiers instead.",
    )
    ethereum_max_priority_fee_per_gas_wei: PositiveInt = Field(
        2_000_000_000,
        description="Cap of the tip to block producers (2 gwei); the node's suggestion is "
        "used below it.",
    )
    ethereum_rpc_timeout_s: PositiveFloat = Field(
        10.0, description="Timeout of each JSON-RPC call to the node."
    )

    api_host: str = Field("127.0.0.1", description="Interface `paymq api serve` listens on.")
    api_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8080, description="Port `paymq api serve` listens on."
    )
    api_keys_file: Path | None = Field(
        None,
        description="The HTTP API's keys: ids, SHA-256 digests and allowed channels (`paymq "
        "api keys add`). Default: api-keys.json in keys_dir.",
    )

    # --- webhooks (`paymq webhooks`, docs/webhooks.md) ---
    webhook_endpoints_file: Path | None = Field(
        None,
        description="The webhook endpoints: ids, URLs, secrets and filters (`paymq webhooks "
        "add`), mode 0600. Default: webhooks.json in keys_dir.",
    )
    webhook_concurrency: PositiveInt = Field(
        8, description="Webhook POSTs in flight per `paymq webhooks run` process."
    )
    webhook_endpoint_concurrency: PositiveInt = Field(
        2,
        description="Of those, at most this many to one endpoint: one that is slow or down "
        "never takes every thread from the others.",
    )
    webhook_retry_schedule_s: tuple[PositiveFloat, ...] = Field(
        (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0, 86400.0),
        min_length=1,
        description="Delays between attempts to deliver one event to one endpoint: after the "
        "first attempt fails, the next comes after the first delay, and so on; after the last "
        "delay's attempt fails the delivery is given up (`failed`, see `paymq webhooks "
        "redeliver`). JSON list in the environment.",
    )
    webhook_connect_timeout_s: PositiveFloat = Field(
        3.0, description="Connect timeout of each webhook POST."
    )
    webhook_read_timeout_s: PositiveFloat = Field(
        10.0, description="Read timeout of each webhook POST; a timeout is retried."
    )
    webhook_lease_s: PositiveFloat = Field(
        60.0,
        description="How long a webhooks process holds a delivery it is sending; one that died "
        "mid-send holds it no longer than this. Keep it above the connect plus read timeouts.",
    )
    webhook_poll_interval_s: PositiveFloat = Field(
        1.0, description="How often the webhook sender looks for deliveries due for a retry."
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Let webhook endpoints be on loopback, private (RFC 1918, 100.64/10, "
        "fc00::/7) and other non-global addresses: for endpoints inside your own network. "
        "Link-local (cloud metadata), multicast and unspecified addresses stay refused. "
        "Judged on the address each POST connects to (docs/webhooks.md).",
    )

    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="json: one object per line with payment_id and message_id; text: for "
        "people; auto: text on a terminal, json otherwise.",
    )

    tracing: Literal["off", "otlp", "console"] = Field(
        "off",
        description="OpenTelemetry spans: otlp exports them to the collector named by the "
        "standard OTEL_EXPORTER_OTLP_ENDPOINT (pip install 'paymq[tracing]'), console prints "
        "them. Trace context travels in AMQP headers (traceparent) either way.",
    )

    # --- metrics ---
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface the Prometheus endpoint of workers, reconcilers and the "
        "webhooks process listens on (0.0.0.0 in a container).",
    )
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        None,
        description="Port of that endpoint (GET /metrics); unset: none (several processes on "
        "one host each need their own port; 0 picks a free one and logs it). The HTTP API "
        "serves /metrics on its own port.",
    )

    def stripe_key(self) -> str | None:
        """The Stripe secret key, from the setting or its file; read at the entry point."""
        if self.stripe_api_key is not None:
            return self.stripe_api_key.get_secret_value()
        if self.stripe_api_key_file is not None:
            try:
                return self.stripe_api_key_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read stripe_api_key_file {self.stripe_api_key_file}: {exc.strerror}"
                ) from None
        return None

    @model_validator(mode="after")
    def _sweeps_after_retries(self) -> Settings:
        slowest_touch_s = max(self.retry_delays_ms) / 1000 + self.claim_lease_s
        if self.abandoned_claim_after_s <= slowest_touch_s:
            raise ValueError(
                f"abandoned_claim_after_s ({self.abandoned_claim_after_s:g}) must exceed the "
                f"longest retry tier plus the claim lease ({slowest_touch_s:g} s): a payment "
                "waiting in a retry tier would be taken for abandoned"
            )
        return self

    @field_validator("amqp_url")
    @classmethod
    def _broker_address(cls, address: str) -> str:
        return check_address(address)

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

    @field_validator("ethereum_tokens")
    @classmethod
    def _known_tokens(cls, tokens: dict[str, str]) -> dict[str, str]:
        from eth_utils.address import is_checksum_address  # noqa: PLC0415

        for asset, address in tokens.items():
            if asset == "ETH" or asset not in DIGITAL_ASSETS:
                known = ", ".join(a for a in DIGITAL_ASSETS if a != "ETH")
                raise ValueError(f"{asset!r} is not a token asset ({known})")
            if not is_checksum_address(address):
                raise ValueError(f"the {asset} token address must be EIP-55 checksummed")
        return tokens

    def ethereum_key(self) -> str | None:
        """The hot wallet's private key, from the setting or its file."""
        if self.ethereum_private_key is not None:
            return self.ethereum_private_key.get_secret_value().strip() or None
        if self.ethereum_private_key_file is not None:
            try:
                return self.ethereum_private_key_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read ethereum_private_key_file {self.ethereum_private_key_file}: "
                    f"{exc.strerror}"
                ) from None
        return None

    def ethereum_expected_chain_id(self) -> int:
        """The configured chain id, or the network's own; refuses a contradiction."""
        known = EVM_CHAIN_IDS[self.ethereum_network]
        if self.ethereum_chain_id is None:
            return known if known is not None else ANVIL_CHAIN_ID
        if known is not None and self.ethereum_chain_id != known:
            raise ConfigurationError(
                f"ethereum_chain_id {self.ethereum_chain_id} is not {self.ethereum_network} "
                f"(chain id {known})"
            )
        return self.ethereum_chain_id

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.keys_dir / "api-keys.json"

    @property
    def webhook_endpoints_path(self) -> Path:
        return self.webhook_endpoints_file or self.keys_dir / "webhooks.json"

    @property
    def prefetch(self) -> int:
        return self.worker_prefetch or self.worker_concurrency

    def topology(self) -> Topology:
        return Topology(
            prefix=self.topology_prefix,
            channels=CHANNELS,
            retry_delays_ms=tuple(self.retry_delays_ms),
            delivery_limit=self.delivery_limit,
            quorum_replicas=self.quorum_replicas,
        )

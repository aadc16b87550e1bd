"""Every environment variable that configured paymq before its settings were grouped by
component still does, from the environment and from `.env`, and lands in its field.

The variables are those docs/configuration.md listed when the settings were one flat class,
copied here on purpose: this list does not follow the settings classes, so renaming a field
(and with it its variable) fails here instead of silently dropping an operator's setting.
"""

from __future__ import annotations

import os
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from common.settings import Settings
from paymq_tools.processes import settings_env

#: Anvil's first development account: a well-known test key, not a secret.
WALLET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"

#: (variable, its text in the environment, the field it sets, the value read), each value
#: other than the default and consistent with the others (the cross-field checks hold).
VARIABLES: tuple[tuple[str, str, str, Any], ...] = (
    (
        "PAYMQ_AMQP_URL",
        "amqp://u:p@broker-a:5672/%2F",
        "broker.amqp_url",
        "amqp://u:p@broker-a:5672/%2F",
    ),
    ("PAYMQ_TOPOLOGY_PREFIX", "shop", "broker.topology_prefix", "shop"),
    ("PAYMQ_DECLARE_TOPOLOGY", "false", "broker.declare_topology", False),
    ("PAYMQ_HEARTBEAT_S", "7", "broker.heartbeat_s", 7),
    ("PAYMQ_CONNECT_TIMEOUT_S", "4.5", "broker.connect_timeout_s", 4.5),
    ("PAYMQ_PUBLISH_TIMEOUT_S", "12.5", "broker.publish_timeout_s", 12.5),
    ("PAYMQ_PUBLISH_ATTEMPTS", "9", "broker.publish_attempts", 9),
    ("PAYMQ_RECONNECT_MAX_DELAY_S", "3.5", "broker.reconnect_max_delay_s", 3.5),
    ("PAYMQ_RETRY_DELAYS_MS", "[100, 2000]", "broker.retry_delays_ms", (100, 2000)),
    ("PAYMQ_DELIVERY_LIMIT", "40", "broker.delivery_limit", 40),
    ("PAYMQ_QUORUM_REPLICAS", "3", "broker.quorum_replicas", 3),
    ("PAYMQ_NOTIFICATIONS_MAX_LENGTH", "5000", "broker.notifications_max_length", 5000),
    ("PAYMQ_MANAGEMENT_URL", "http://rabbit:15672", "broker.management_url", "http://rabbit:15672"),
    ("PAYMQ_POISON_AFTER_TAKEOVERS", "4", "worker.poison_after_takeovers", 4),
    ("PAYMQ_KEYS_DIR", "/etc/paymq/keys", "keys.keys_dir", Path("/etc/paymq/keys")),
    ("PAYMQ_PRODUCER_KEY_ID", "producer-9", "keys.producer_key_id", "producer-9"),
    ("PAYMQ_GATEWAY_KEY_ID", "gateway-9", "keys.gateway_key_id", "gateway-9"),
    ("PAYMQ_WORKER_KEY_ID", "worker-9", "keys.worker_key_id", "worker-9"),
    ("PAYMQ_SEALING_KEY_ID", "card-seal-9", "keys.sealing_key_id", "card-seal-9"),
    ("PAYMQ_MAX_BODY_BYTES", "1024", "messages.max_body_bytes", 1024),
    ("PAYMQ_REQUEST_TTL_S", "600", "messages.request_ttl_s", 600),
    ("PAYMQ_MAX_CLOCK_SKEW_S", "30", "messages.max_clock_skew_s", 30),
    ("PAYMQ_WORKER_CONCURRENCY", "4", "worker.worker_concurrency", 4),
    ("PAYMQ_WORKER_PREFETCH", "2", "worker.worker_prefetch", 2),
    ("PAYMQ_MAX_ATTEMPTS", "3", "worker.max_attempts", 3),
    ("PAYMQ_SHUTDOWN_GRACE_S", "12.5", "worker.shutdown_grace_s", 12.5),
    ("PAYMQ_HEALTH_FILE", "/run/paymq/healthy", "worker.health_file", Path("/run/paymq/healthy")),
    (
        "PAYMQ_DATABASE_URL",
        "postgresql+psycopg://paymq:pw@db/paymq",
        "store.database_url",
        "postgresql+psycopg://paymq:pw@db/paymq",
    ),
    ("PAYMQ_CLAIM_LEASE_S", "20", "worker.claim_lease_s", 20.0),
    ("PAYMQ_RECONCILE_SCHEDULE_S", "[1.5, 30]", "reconciler.reconcile_schedule_s", (1.5, 30.0)),
    ("PAYMQ_PAYER_ACTION_TIMEOUT_S", "120", "reconciler.payer_action_timeout_s", 120.0),
    ("PAYMQ_RECONCILE_INTERVAL_S", "0.5", "reconciler.reconcile_interval_s", 0.5),
    ("PAYMQ_REPUBLISH_AFTER_S", "3", "reconciler.republish_after_s", 3.0),
    ("PAYMQ_ABANDONED_CLAIM_AFTER_S", "600", "reconciler.abandoned_claim_after_s", 600.0),
    ("PAYMQ_DATABASE_CONNECT_TIMEOUT_S", "2.5", "store.database_connect_timeout_s", 2.5),
    ("PAYMQ_DATABASE_TIMEOUT_S", "4.5", "store.database_timeout_s", 4.5),
    ("PAYMQ_WORKER_RECONCILES", "false", "worker.worker_reconciles", False),
    ("PAYMQ_WORKER_SCHEDULING", "normal", "worker.worker_scheduling", "normal"),
    ("PAYMQ_CRASH_AT", "before_ack", "faults.crash_at", "before_ack"),
    ("PAYMQ_CRASH_EVERY", "3", "faults.crash_every", 3),
    ("PAYMQ_CRASH_REFERENCE_PREFIX", "poison-", "faults.crash_reference_prefix", "poison-"),
    ("PAYMQ_STALL_AT", "after_provider_call", "faults.stall_at", "after_provider_call"),
    ("PAYMQ_STALL_S", "2.5", "faults.stall_s", 2.5),
    ("PAYMQ_STALL_EVERY", "4", "faults.stall_every", 4),
    (
        "PAYMQ_CARD_PROVIDERS",
        '["stripe", "sandbox"]',
        "providers.card_providers",
        ("stripe", "sandbox"),
    ),
    ("PAYMQ_PAYOUT_PROVIDERS", '["ethereum"]', "providers.payout_providers", ("ethereum",)),
    ("PAYMQ_PROVIDER_URL", "http://sandbox:8099", "sandbox.provider_url", "http://sandbox:8099"),
    ("PAYMQ_PROVIDER_CONNECT_TIMEOUT_S", "1.5", "providers.provider_connect_timeout_s", 1.5),
    ("PAYMQ_PROVIDER_READ_TIMEOUT_S", "2.5", "providers.provider_read_timeout_s", 2.5),
    ("PAYMQ_STRIPE_API_KEY", "sk_test_variables", "stripe.stripe_api_key", "sk_test_variables"),
    (
        "PAYMQ_STRIPE_API_KEY_FILE",
        "/run/secrets/stripe",
        "stripe.stripe_api_key_file",
        Path("/run/secrets/stripe"),
    ),
    (
        "PAYMQ_STRIPE_API_BASE",
        "http://localstripe:8420",
        "stripe.stripe_api_base",
        "http://localstripe:8420",
    ),
    ("PAYMQ_BREAKER_FAILURES", "7", "providers.breaker_failures", 7),
    ("PAYMQ_BREAKER_OPEN_S", "4.5", "providers.breaker_open_s", 4.5),
    (
        "PAYMQ_ETHEREUM_RPC_URL",
        "https://node.example/v3/abc",
        "ethereum.ethereum_rpc_url",
        "https://node.example/v3/abc",
    ),
    ("PAYMQ_ETHEREUM_NETWORK", "ethereum-sepolia", "ethereum.ethereum_network", "ethereum-sepolia"),
    ("PAYMQ_ETHEREUM_CHAIN_ID", "11155111", "ethereum.ethereum_chain_id", 11155111),
    ("PAYMQ_ETHEREUM_PRIVATE_KEY", WALLET_KEY, "ethereum.ethereum_private_key", WALLET_KEY),
    (
        "PAYMQ_ETHEREUM_PRIVATE_KEY_FILE",
        "/run/secrets/wallet",
        "ethereum.ethereum_private_key_file",
        Path("/run/secrets/wallet"),
    ),
    ("PAYMQ_ETHEREUM_TOKENS", f'{{"USDC": "{USDC}"}}', "ethereum.ethereum_tokens", {"USDC": USDC}),
    ("PAYMQ_ETHEREUM_CONFIRMATIONS", "3", "ethereum.ethereum_confirmations", 3),
    (
        "PAYMQ_ETHEREUM_MAX_FEE_PER_GAS_WEI",
        "100000000000",
        "ethereum.ethereum_max_fee_per_gas_wei",
        100_000_000_000,
    ),
    (
        "PAYMQ_ETHEREUM_MAX_PRIORITY_FEE_PER_GAS_WEI",
        "1000000000",
        "ethereum.ethereum_max_priority_fee_per_gas_wei",
        1_000_000_000,
    ),
    ("PAYMQ_ETHEREUM_RPC_TIMEOUT_S", "4.5", "ethereum.ethereum_rpc_timeout_s", 4.5),
    ("PAYMQ_API_HOST", "10.0.0.5", "api.api_host", "10.0.0.5"),
    ("PAYMQ_API_PORT", "9090", "api.api_port", 9090),
    (
        "PAYMQ_API_KEYS_FILE",
        "/etc/paymq/api.json",
        "api.api_keys_file",
        Path("/etc/paymq/api.json"),
    ),
    (
        "PAYMQ_WEBHOOK_ENDPOINTS_FILE",
        "/etc/paymq/hooks.json",
        "webhooks.webhook_endpoints_file",
        Path("/etc/paymq/hooks.json"),
    ),
    ("PAYMQ_WEBHOOK_CONCURRENCY", "4", "webhooks.webhook_concurrency", 4),
    ("PAYMQ_WEBHOOK_ENDPOINT_CONCURRENCY", "1", "webhooks.webhook_endpoint_concurrency", 1),
    ("PAYMQ_WEBHOOK_RETRY_SCHEDULE_S", "[5, 60]", "webhooks.webhook_retry_schedule_s", (5.0, 60.0)),
    ("PAYMQ_WEBHOOK_CONNECT_TIMEOUT_S", "1.5", "webhooks.webhook_connect_timeout_s", 1.5),
    ("PAYMQ_WEBHOOK_READ_TIMEOUT_S", "2.5", "webhooks.webhook_read_timeout_s", 2.5),
    ("PAYMQ_WEBHOOK_LEASE_S", "30", "webhooks.webhook_lease_s", 30.0),
    ("PAYMQ_WEBHOOK_POLL_INTERVAL_S", "0.5", "webhooks.webhook_poll_interval_s", 0.5),
    (
        "PAYMQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
        "true",
        "webhooks.webhook_allow_private_networks",
        True,
    ),
    ("PAYMQ_LOG_LEVEL", "DEBUG", "observability.log_level", "DEBUG"),
    ("PAYMQ_LOG_FORMAT", "json", "observability.log_format", "json"),
    ("PAYMQ_TRACING", "console", "observability.tracing", "console"),
    ("PAYMQ_METRICS_HOST", "10.0.0.6", "observability.metrics_host", "10.0.0.6"),
    ("PAYMQ_METRICS_PORT", "9100", "observability.metrics_port", 9100),
)

#: Conventional names read besides the PAYMQ_ ones, each alone.
ALIASES: tuple[tuple[str, str, str, Any], ...] = (
    ("AMQP_URL", "amqp://u:p@broker-b:5672/v", "broker.amqp_url", "amqp://u:p@broker-b:5672/v"),
    ("RABBITMQ_URL", "amqp://u:p@broker-c:5672/v", "broker.amqp_url", "amqp://u:p@broker-c:5672/v"),
    ("STRIPE_API_KEY", "sk_test_alias", "stripe.stripe_api_key", "sk_test_alias"),
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the developer's shell reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMQ_") or name.upper() in (
            "AMQP_URL",
            "RABBITMQ_URL",
            "STRIPE_API_KEY",
        ):
            monkeypatch.delenv(name)


def read(settings: Settings, field: str) -> Any:
    value = attrgetter(field)(settings)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_variable_set_in_the_environment_lands_in_its_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings(_env_file=None)
    for variable, text, _, _ in VARIABLES:
        monkeypatch.setenv(variable, text)
    settings = Settings(_env_file=None)
    for variable, _, field, expected in VARIABLES:
        assert read(settings, field) == expected, variable
        assert read(defaults, field) != expected, f"{variable}: the test value is the default"


def test_every_variable_written_in_a_dotenv_file_lands_in_its_field(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{variable}={text}\n" for variable, text, _, _ in VARIABLES))
    settings = Settings(_env_file=env_file)
    for variable, _, field, expected in VARIABLES:
        assert read(settings, field) == expected, variable


def test_a_dotenv_file_in_the_working_directory_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PAYMQ_WEBHOOK_CONCURRENCY=3\nPAYMQ_MAX_ATTEMPTS=2\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert read(settings, "webhooks.webhook_concurrency") == 3
    assert read(settings, "worker.max_attempts") == 2


@pytest.mark.parametrize(("variable", "text", "field", "expected"), ALIASES)
def test_each_conventional_name_is_read_too(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(variable, text)
    assert read(Settings(_env_file=None), field) == expected


def test_the_generated_docs_name_every_variable() -> None:
    from paymq.configdoc import render  # noqa: PLC0415

    documented = render()
    for variable, _, _, _ in VARIABLES:
        assert f"`{variable}`" in documented, variable


def test_a_child_process_given_settings_env_reads_the_same_settings_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, text, _, _ in VARIABLES:
        monkeypatch.setenv(variable, text)
    settings = Settings(_env_file=None)
    env = settings_env(settings, {"PATH": "/usr/bin", "AMQP_URL": "amqp://stale/"})
    assert set(env) - {"PATH"} <= {variable for variable, _, _, _ in VARIABLES}
    for variable, _, _, _ in VARIABLES:
        monkeypatch.delenv(variable)
    for variable, text in env.items():
        monkeypatch.setenv(variable, text)
    assert Settings(_env_file=None) == settings


def test_the_store_url_is_a_secret_that_no_repr_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMQ_DATABASE_URL", "postgresql+psycopg://paymq:db-s3cret@db/paymq")
    settings = Settings(_env_file=None)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump(mode="json"))
    assert settings.store.database_url.get_secret_value().endswith(":db-s3cret@db/paymq")

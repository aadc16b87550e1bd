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

#: Anvil's first development account: a well-known test key, not a secret.
WALLET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"

#: (variable, its text in the environment, the field it sets, the value read), each value
#: other than the default and consistent with the others (the cross-field checks hold).
VARIABLES: tuple[tuple[str, str, str, Any], ...] = (
    ("PAYMQ_AMQP_URL", "amqp://u:p@broker-a:5672/%2F", "amqp_url", "amqp://u:p@broker-a:5672/%2F"),
    ("PAYMQ_TOPOLOGY_PREFIX", "shop", "topology_prefix", "shop"),
    ("PAYMQ_HEARTBEAT_S", "7", "heartbeat_s", 7),
    ("PAYMQ_CONNECT_TIMEOUT_S", "4.5", "connect_timeout_s", 4.5),
    ("PAYMQ_PUBLISH_TIMEOUT_S", "12.5", "publish_timeout_s", 12.5),
    ("PAYMQ_PUBLISH_ATTEMPTS", "9", "publish_attempts", 9),
    ("PAYMQ_RECONNECT_MAX_DELAY_S", "3.5", "reconnect_max_delay_s", 3.5),
    ("PAYMQ_RETRY_DELAYS_MS", "[100, 2000]", "retry_delays_ms", (100, 2000)),
    ("PAYMQ_DELIVERY_LIMIT", "40", "delivery_limit", 40),
    ("PAYMQ_QUORUM_REPLICAS", "3", "quorum_replicas", 3),
    ("PAYMQ_MANAGEMENT_URL", "http://rabbit:15672", "management_url", "http://rabbit:15672"),
    ("PAYMQ_POISON_AFTER_TAKEOVERS", "4", "poison_after_takeovers", 4),
    ("PAYMQ_KEYS_DIR", "/etc/paymq/keys", "keys_dir", Path("/etc/paymq/keys")),
    ("PAYMQ_PRODUCER_KEY_ID", "producer-9", "producer_key_id", "producer-9"),
    ("PAYMQ_GATEWAY_KEY_ID", "gateway-9", "gateway_key_id", "gateway-9"),
    ("PAYMQ_WORKER_KEY_ID", "worker-9", "worker_key_id", "worker-9"),
    ("PAYMQ_SEALING_KEY_ID", "card-seal-9", "sealing_key_id", "card-seal-9"),
    ("PAYMQ_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
    ("PAYMQ_REQUEST_TTL_S", "600", "request_ttl_s", 600),
    ("PAYMQ_MAX_CLOCK_SKEW_S", "30", "max_clock_skew_s", 30),
    ("PAYMQ_WORKER_CONCURRENCY", "4", "worker_concurrency", 4),
    ("PAYMQ_WORKER_PREFETCH", "2", "worker_prefetch", 2),
    ("PAYMQ_MAX_ATTEMPTS", "3", "max_attempts", 3),
    ("PAYMQ_SHUTDOWN_GRACE_S", "12.5", "shutdown_grace_s", 12.5),
    ("PAYMQ_HEALTH_FILE", "/run/paymq/healthy", "health_file", Path("/run/paymq/healthy")),
    (
        "PAYMQ_DATABASE_URL",
        "postgresql+psycopg://paymq:pw@db/paymq",
        "database_url",
        "postgresql+psycopg://paymq:pw@db/paymq",
    ),
    ("PAYMQ_CLAIM_LEASE_S", "20", "claim_lease_s", 20.0),
    ("PAYMQ_RECONCILE_SCHEDULE_S", "[1.5, 30]", "reconcile_schedule_s", (1.5, 30.0)),
    ("PAYMQ_PAYER_ACTION_TIMEOUT_S", "120", "payer_action_timeout_s", 120.0),
    ("PAYMQ_RECONCILE_INTERVAL_S", "0.5", "reconcile_interval_s", 0.5),
    ("PAYMQ_REPUBLISH_AFTER_S", "3", "republish_after_s", 3.0),
    ("PAYMQ_ABANDONED_CLAIM_AFTER_S", "600", "abandoned_claim_after_s", 600.0),
    ("PAYMQ_DATABASE_CONNECT_TIMEOUT_S", "2.5", "database_connect_timeout_s", 2.5),
    ("PAYMQ_DATABASE_TIMEOUT_S", "4.5", "database_timeout_s", 4.5),
    ("PAYMQ_WORKER_RECONCILES", "false", "worker_reconciles", False),
    ("PAYMQ_CRASH_AT", "before_ack", "crash_at", "before_ack"),
    ("PAYMQ_CRASH_EVERY", "3", "crash_every", 3),
    ("PAYMQ_CRASH_REFERENCE_PREFIX", "poison-", "crash_reference_prefix", "poison-"),
    ("PAYMQ_STALL_AT", "after_provider_call", "stall_at", "after_provider_call"),
    ("PAYMQ_STALL_S", "2.5", "stall_s", 2.5),
    ("PAYMQ_STALL_EVERY", "4", "stall_every", 4),
    ("PAYMQ_CARD_PROVIDERS", '["stripe", "sandbox"]', "card_providers", ("stripe", "sandbox")),
    ("PAYMQ_PAYOUT_PROVIDERS", '["ethereum"]', "payout_providers", ("ethereum",)),
    ("PAYMQ_PROVIDER_URL", "http://sandbox:8099", "provider_url", "http://sandbox:8099"),
    ("PAYMQ_PROVIDER_CONNECT_TIMEOUT_S", "1.5", "provider_connect_timeout_s", 1.5),
    ("PAYMQ_PROVIDER_READ_TIMEOUT_S", "2.5", "provider_read_timeout_s", 2.5),
    ("PAYMQ_STRIPE_API_KEY", "sk_test_variables", "stripe_api_key", "sk_test_variables"),
    (
        "PAYMQ_STRIPE_API_KEY_FILE",
        "/run/secrets/stripe",
        "stripe_api_key_file",
        Path("/run/secrets/stripe"),
    ),
    (
        "PAYMQ_STRIPE_API_BASE",
        "http://localstripe:8420",
        "stripe_api_base",
        "http://localstripe:8420",
    ),
    ("PAYMQ_BREAKER_FAILURES", "7", "breaker_failures", 7),
    ("PAYMQ_BREAKER_OPEN_S", "4.5", "breaker_open_s", 4.5),
    (
        "PAYMQ_ETHEREUM_RPC_URL",
        "https://node.example/v3/abc",
        "ethereum_rpc_url",
        "https://node.example/v3/abc",
    ),
    ("PAYMQ_ETHEREUM_NETWORK", "ethereum-sepolia", "ethereum_network", "ethereum-sepolia"),
    ("PAYMQ_ETHEREUM_CHAIN_ID", "11155111", "ethereum_chain_id", 11155111),
    ("PAYMQ_ETHEREUM_PRIVATE_KEY", WALLET_KEY, "ethereum_private_key", WALLET_KEY),
    (
        "PAYMQ_ETHEREUM_PRIVATE_KEY_FILE",
        "/run/secrets/wallet",
        "ethereum_private_key_file",
        Path("/run/secrets/wallet"),
    ),
    ("PAYMQ_ETHEREUM_TOKENS", f'{{"USDC": "{USDC}"}}', "ethereum_tokens", {"USDC": USDC}),
    ("PAYMQ_ETHEREUM_CONFIRMATIONS", "3", "ethereum_confirmations", 3),
    (
        "PAYMQ_ETHEREUM_MAX_FEE_PER_GAS_WEI",
        "100000000000",
        "ethereum_max_fee_per_gas_wei",
        100_000_000_000,
    ),
    (
        "PAYMQ_ETHEREUM_MAX_PRIORITY_FEE_PER_GAS_WEI",
        "1000000000",
        "ethereum_max_priority_fee_per_gas_wei",
        1_000_000_000,
    ),
    ("PAYMQ_ETHEREUM_RPC_TIMEOUT_S", "4.5", "ethereum_rpc_timeout_s", 4.5),
    ("PAYMQ_API_HOST", "10.0.0.5", "api_host", "10.0.0.5"),
    ("PAYMQ_API_PORT", "9090", "api_port", 9090),
    ("PAYMQ_API_KEYS_FILE", "/etc/paymq/api.json", "api_keys_file", Path("/etc/paymq/api.json")),
    (
        "PAYMQ_WEBHOOK_ENDPOINTS_FILE",
        "/etc/paymq/hooks.json",
        "webhook_endpoints_file",
        Path("/etc/paymq/hooks.json"),
    ),
    ("PAYMQ_WEBHOOK_CONCURRENCY", "4", "webhook_concurrency", 4),
    ("PAYMQ_WEBHOOK_ENDPOINT_CONCURRENCY", "1", "webhook_endpoint_concurrency", 1),
    ("PAYMQ_WEBHOOK_RETRY_SCHEDULE_S", "[5, 60]", "webhook_retry_schedule_s", (5.0, 60.0)),
    ("PAYMQ_WEBHOOK_CONNECT_TIMEOUT_S", "1.5", "webhook_connect_timeout_s", 1.5),
    ("PAYMQ_WEBHOOK_READ_TIMEOUT_S", "2.5", "webhook_read_timeout_s", 2.5),
    ("PAYMQ_WEBHOOK_LEASE_S", "30", "webhook_lease_s", 30.0),
    ("PAYMQ_WEBHOOK_POLL_INTERVAL_S", "0.5", "webhook_poll_interval_s", 0.5),
    ("PAYMQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true", "webhook_allow_private_networks", True),
    ("PAYMQ_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
    ("PAYMQ_LOG_FORMAT", "json", "log_format", "json"),
    ("PAYMQ_TRACING", "console", "tracing", "console"),
    ("PAYMQ_METRICS_HOST", "10.0.0.6", "metrics_host", "10.0.0.6"),
    ("PAYMQ_METRICS_PORT", "9100", "metrics_port", 9100),
)

#: Conventional names read besides the PAYMQ_ ones, each alone.
ALIASES: tuple[tuple[str, str, str, Any], ...] = (
    ("AMQP_URL", "amqp://u:p@broker-b:5672/v", "amqp_url", "amqp://u:p@broker-b:5672/v"),
    ("RABBITMQ_URL", "amqp://u:p@broker-c:5672/v", "amqp_url", "amqp://u:p@broker-c:5672/v"),
    ("STRIPE_API_KEY", "sk_test_alias", "stripe_api_key", "sk_test_alias"),
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
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for variable, text, _, _ in VARIABLES:
        monkeypatch.setenv(variable, text)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for variable, _, field, expected in VARIABLES:
        assert read(settings, field) == expected, variable
        assert read(defaults, field) != expected, f"{variable}: the test value is the default"


def test_every_variable_written_in_a_dotenv_file_lands_in_its_field(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{variable}={text}\n" for variable, text, _, _ in VARIABLES))
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    for variable, _, field, expected in VARIABLES:
        assert read(settings, field) == expected, variable


def test_a_dotenv_file_in_the_working_directory_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PAYMQ_WEBHOOK_CONCURRENCY=3\nPAYMQ_MAX_ATTEMPTS=2\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert read(settings, "webhook_concurrency") == 3
    assert read(settings, "max_attempts") == 2


@pytest.mark.parametrize(("variable", "text", "field", "expected"), ALIASES)
def test_each_conventional_name_is_read_too(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(variable, text)
    assert read(Settings(_env_file=None), field) == expected  # type: ignore[call-arg]


def test_the_generated_docs_name_every_variable() -> None:
    from paymq.configdoc import render  # noqa: PLC0415

    documented = render()
    for variable, _, _, _ in VARIABLES:
        assert f"`{variable}`" in documented, variable

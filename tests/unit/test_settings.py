"""Settings: defaults, the PAYMQ_ prefix and the conventional broker URL variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from common.settings import DEFAULT_AMQP_URL, Settings
from common.topology import Topology


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the developer's shell reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMQ_") or name.upper() in ("AMQP_URL", "RABBITMQ_URL"):
            monkeypatch.delenv(name)


def load() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_defaults_need_no_environment():
    settings = load()
    assert settings.amqp_url == DEFAULT_AMQP_URL == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.topology_prefix == "paymq"
    assert settings.retry_delays_ms == (1_000, 5_000, 30_000, 120_000, 600_000)
    assert settings.max_body_bytes == 65_536
    assert settings.keys_dir == Path("keys")
    assert (settings.producer_key_id, settings.worker_key_id) == ("producer-1", "worker-1")
    assert settings.health_file is None


def test_fields_read_their_paymq_prefixed_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_TOPOLOGY_PREFIX", "shop")
    monkeypatch.setenv("PAYMQ_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("PAYMQ_PROVIDER_READ_TIMEOUT_S", "2.5")
    monkeypatch.setenv("PAYMQ_KEYS_DIR", "/etc/paymq/keys")
    settings = load()
    assert settings.topology_prefix == "shop"
    assert settings.max_attempts == 3
    assert settings.provider_read_timeout_s == 2.5
    assert settings.keys_dir == Path("/etc/paymq/keys")


def test_unprefixed_field_names_are_not_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAX_ATTEMPTS", "3")
    assert load().max_attempts == 5


@pytest.mark.parametrize("name", ["PAYMQ_AMQP_URL", "AMQP_URL", "RABBITMQ_URL"])
def test_the_broker_url_is_read_from_any_of_its_variables(
    monkeypatch: pytest.MonkeyPatch, name: str
):
    monkeypatch.setenv(name, "amqps://u:p@broker:5671/v")
    assert load().amqp_url == "amqps://u:p@broker:5671/v"


def test_paymq_amqp_url_wins_over_amqp_url_which_wins_over_rabbitmq_url(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("RABBITMQ_URL", "amqp://rabbitmq")
    monkeypatch.setenv("AMQP_URL", "amqp://amqp")
    assert load().amqp_url == "amqp://amqp"
    monkeypatch.setenv("PAYMQ_AMQP_URL", "amqp://paymq")
    assert load().amqp_url == "amqp://paymq"


def test_retry_delays_are_a_json_list_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_RETRY_DELAYS_MS", "[100, 2000]")
    settings = load()
    assert settings.retry_delays_ms == (100, 2_000)
    assert settings.topology().retry_delays_ms == (100, 2_000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYMQ_RETRY_DELAYS_MS", "[0, 1000]"),
        ("PAYMQ_MAX_ATTEMPTS", "0"),
        ("PAYMQ_MAX_BODY_BYTES", "-1"),
        ("PAYMQ_CONNECT_TIMEOUT_S", "0"),
        ("PAYMQ_TOPOLOGY_PREFIX", "Shop Prefix"),
    ],
)
def test_invalid_values_are_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        load()


def test_retry_delays_that_are_not_json_are_refused_at_start_up(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_RETRY_DELAYS_MS", "1000,5000")
    with pytest.raises(SettingsError, match="retry_delays_ms"):
        load()


def test_env_file_is_read_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env_file = tmp_path / "paymq.env"
    env_file.write_text("PAYMQ_WORKER_CONCURRENCY=4\n")
    assert Settings(_env_file=env_file).worker_concurrency == 4  # type: ignore[call-arg]
    assert load().worker_concurrency == 32


def test_prefetch_defaults_to_the_concurrency(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_WORKER_CONCURRENCY", "8")
    assert load().prefetch == 8
    monkeypatch.setenv("PAYMQ_WORKER_PREFETCH", "2")
    assert load().prefetch == 2


def test_settings_are_frozen():
    with pytest.raises(ValidationError):
        load().max_attempts = 9  # type: ignore[misc]


def test_topology_is_built_from_the_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_TOPOLOGY_PREFIX", "shop")
    monkeypatch.setenv("PAYMQ_DELIVERY_LIMIT", "4")
    assert load().topology() == Topology(prefix="shop", delivery_limit=4)


def test_a_cluster_is_given_as_a_comma_separated_list_of_urls(monkeypatch):
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@a:5672/%2F, amqp://u:p@b:5672/%2F")
    assert load().amqp_url == "amqp://u:p@a:5672/%2F,amqp://u:p@b:5672/%2F"


def test_a_list_with_a_bad_url_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("PAYMQ_AMQP_URL", "amqp://a/,amqp://u:secret@b:99999/")
    with pytest.raises(ValidationError) as raised:
        load()
    message = str(raised.value)
    assert "address 2 of 2 (amqp://u:***@b:99999/)" in message
    assert "secret" not in raised.value.errors(include_input=False)[0]["msg"]

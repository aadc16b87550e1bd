"""Settings: defaults, the PAYMQ_ prefix and the conventional broker URL variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from common.settings import DEFAULT_AMQP_URL, SECTIONS, SETTINGS, Settings
from common.settings.broker import BrokerSettings
from common.settings.section import PROCESSES
from common.topology import Topology


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the developer's shell reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMQ_") or name.upper() in ("AMQP_URL", "RABBITMQ_URL"):
            monkeypatch.delenv(name)


def load() -> Settings:
    return Settings(_env_file=None)


def test_defaults_need_no_environment():
    settings = load()
    assert settings.broker.amqp_url == DEFAULT_AMQP_URL == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.broker.topology_prefix == "paymq"
    assert settings.broker.retry_delays_ms == (1_000, 5_000, 30_000, 120_000, 600_000)
    assert settings.messages.max_body_bytes == 65_536
    assert settings.keys.keys_dir == Path("keys")
    assert (settings.keys.producer_key_id, settings.keys.worker_key_id) == (
        "producer-1",
        "worker-1",
    )
    assert settings.worker.health_file is None


def test_fields_read_their_paymq_prefixed_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_TOPOLOGY_PREFIX", "shop")
    monkeypatch.setenv("PAYMQ_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("PAYMQ_PROVIDER_READ_TIMEOUT_S", "2.5")
    monkeypatch.setenv("PAYMQ_KEYS_DIR", "/etc/paymq/keys")
    settings = load()
    assert settings.broker.topology_prefix == "shop"
    assert settings.worker.max_attempts == 3
    assert settings.providers.provider_read_timeout_s == 2.5
    assert settings.keys.keys_dir == Path("/etc/paymq/keys")


def test_unprefixed_field_names_are_not_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAX_ATTEMPTS", "3")
    assert load().worker.max_attempts == 5


@pytest.mark.parametrize("name", ["PAYMQ_AMQP_URL", "AMQP_URL", "RABBITMQ_URL"])
def test_the_broker_url_is_read_from_any_of_its_variables(
    monkeypatch: pytest.MonkeyPatch, name: str
):
    monkeypatch.setenv(name, "amqps://u:p@broker:5671/v")
    assert load().broker.amqp_url == "amqps://u:p@broker:5671/v"


def test_paymq_amqp_url_wins_over_amqp_url_which_wins_over_rabbitmq_url(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("RABBITMQ_URL", "amqp://rabbitmq")
    monkeypatch.setenv("AMQP_URL", "amqp://amqp")
    assert load().broker.amqp_url == "amqp://amqp"
    monkeypatch.setenv("PAYMQ_AMQP_URL", "amqp://paymq")
    assert load().broker.amqp_url == "amqp://paymq"


def test_retry_delays_are_a_json_list_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_RETRY_DELAYS_MS", "[100, 2000]")
    settings = load()
    assert settings.broker.retry_delays_ms == (100, 2_000)
    assert settings.broker.topology().retry_delays_ms == (100, 2_000)


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
    assert Settings(_env_file=env_file).worker.worker_concurrency == 4
    assert load().worker.worker_concurrency == 32


def test_prefetch_defaults_to_the_concurrency(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_WORKER_CONCURRENCY", "8")
    assert load().worker.prefetch == 8
    monkeypatch.setenv("PAYMQ_WORKER_PREFETCH", "2")
    assert load().worker.prefetch == 2


def test_settings_are_frozen():
    with pytest.raises(ValidationError):
        load().worker.max_attempts = 9  # type: ignore[misc]
    with pytest.raises(ValidationError):
        load().worker = load().worker  # type: ignore[misc]


def test_keywords_set_single_settings_by_field_name_in_whichever_section_holds_them():
    settings = Settings(_env_file=None, amqp_url="amqp://a/", max_attempts=2, stall_s=1.5)
    assert settings.broker.amqp_url == "amqp://a/"
    assert settings.worker.max_attempts == 2
    assert settings.faults.stall_s == 1.5


def test_a_keyword_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("PAYMQ_SHUTDOWN_GRACE_S", "4")
    settings = Settings(_env_file=None, max_attempts=7)
    assert (settings.worker.max_attempts, settings.worker.shutdown_grace_s) == (7, 4.0)


def test_an_unknown_keyword_is_refused():
    with pytest.raises(ValidationError, match="max_attempt"):
        Settings(_env_file=None, max_attempt=3)


def test_invalid_values_of_several_sections_are_reported_together(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("PAYMQ_HEARTBEAT_S", "0")
    monkeypatch.setenv("PAYMQ_WEBHOOK_CONCURRENCY", "-1")
    with pytest.raises(ValidationError) as raised:
        load()
    assert [e["loc"] for e in raised.value.errors()] == [
        ("heartbeat_s",),
        ("webhook_concurrency",),
    ]


def test_replace_changes_only_the_settings_named(monkeypatch: pytest.MonkeyPatch):
    original = load()
    monkeypatch.setenv("PAYMQ_WORKER_CONCURRENCY", "3")  # not read again by replace
    changed = original.replace(max_attempts=1, topology_prefix="other")
    assert (changed.worker.max_attempts, changed.broker.topology_prefix) == (1, "other")
    assert changed.worker.worker_concurrency == original.worker.worker_concurrency == 32
    assert changed.store == original.store
    assert original.worker.max_attempts == 5


def test_replace_checks_values_as_the_environment_would():
    with pytest.raises(ValidationError, match="heartbeat_s"):
        load().replace(heartbeat_s=0)
    assert load().replace(retry_delays_ms=[100, 200]).broker.retry_delays_ms == (100, 200)


def test_replace_refuses_a_name_that_is_no_setting():
    with pytest.raises(TypeError, match="no setting 'heartbeat'"):
        load().replace(heartbeat=3)


def test_topology_is_built_from_the_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_TOPOLOGY_PREFIX", "shop")
    monkeypatch.setenv("PAYMQ_DELIVERY_LIMIT", "4")
    assert load().broker.topology() == Topology(prefix="shop", delivery_limit=4)


def test_a_cluster_is_given_as_a_comma_separated_list_of_urls(monkeypatch):
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@a:5672/%2F, amqp://u:p@b:5672/%2F")
    assert load().broker.amqp_url == "amqp://u:p@a:5672/%2F,amqp://u:p@b:5672/%2F"


def test_a_list_with_a_bad_url_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("PAYMQ_AMQP_URL", "amqp://a/,amqp://u:secret@b:99999/")
    with pytest.raises(ValidationError) as raised:
        load()
    message = str(raised.value)
    assert "address 2 of 2 (amqp://u:***@b:99999/)" in message
    assert "secret" not in raised.value.errors(include_input=False)[0]["msg"]


# --- checks that span fields ------------------------------------------------------------------


def test_an_abandoned_claim_must_outlast_the_longest_retry_tier_plus_the_claim_lease():
    with pytest.raises(ValidationError, match=r"abandoned_claim_after_s \(60\) must exceed"):
        Settings(
            _env_file=None, retry_delays_ms=(50_000,), claim_lease_s=10, abandoned_claim_after_s=60
        )
    Settings(
        _env_file=None, retry_delays_ms=(40_000,), claim_lease_s=10, abandoned_claim_after_s=60
    )


def test_a_webhook_lease_must_outlast_one_attempt():
    with pytest.raises(ValidationError, match="webhook_lease_s must be longer"):
        Settings(
            _env_file=None,
            webhook_connect_timeout_s=3,
            webhook_read_timeout_s=10,
            webhook_lease_s=13,
        )


def test_every_contradiction_is_reported_at_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PAYMQ_WEBHOOK_LEASE_S", "1")
    monkeypatch.setenv("PAYMQ_ETHEREUM_NETWORK", "ethereum")
    monkeypatch.setenv("PAYMQ_ETHEREUM_CHAIN_ID", "5")
    with pytest.raises(ValidationError) as raised:
        load()
    [problem] = raised.value.errors()
    assert "webhook_lease_s" in problem["msg"]
    assert "ethereum_chain_id 5" in problem["msg"]


def test_replace_is_held_to_the_same_checks():
    with pytest.raises(ValidationError, match="webhook_lease_s"):
        load().replace(webhook_lease_s=1.0)


# --- what reads what (docs/configuration.md's "read by") --------------------------------------


def test_every_setting_is_read_by_some_process():
    for setting in SETTINGS:
        assert setting.read_by, setting.variable
        assert set(setting.read_by) <= set(PROCESSES), setting.variable


def test_a_field_naming_its_readers_overrides_its_sections():
    readers = {setting.variable: setting.read_by for setting in SETTINGS}
    assert readers["PAYMQ_MANAGEMENT_URL"] == ("cli",)
    assert readers["PAYMQ_AMQP_URL"] == BrokerSettings.read_by
    assert readers["PAYMQ_CRASH_AT"] == ("worker",)


def test_the_docs_have_a_section_per_component_and_a_read_by_column():
    from paymq.configdoc import render  # noqa: PLC0415

    documented = render()
    for kind in SECTIONS.values():
        assert f"\n## {kind.heading}\n" in documented
    assert documented.count("| variable | default | read by | meaning |") == len(SECTIONS)
    assert "| `PAYMQ_MANAGEMENT_URL` | — | cli |" in documented

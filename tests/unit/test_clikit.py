"""clikit.friendly: paymq's errors end a command as one line on standard error and an exit
status (tests/integration/test_cli_outages.py runs the real commands)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from common.errors import (
    BrokerUnavailable,
    ConfigurationError,
    PaymentDeclined,
    PaymqError,
    StoreUnavailable,
)
from paymq.clikit import Friendly, UsageError, friendly, load_settings
from paymq_tools.launch import ProcessFailed


def _exit_of(error: Friendly) -> int:
    @friendly
    def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as ended:
        command()
    return ended.value.exit_code


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BrokerUnavailable("cannot reach RabbitMQ"), 2),
        (StoreUnavailable("the payment store does not answer"), 2),
        (UsageError("unknown channel 'cardd'"), 2),
        (ConfigurationError("an API key 'shop' exists already"), 1),
        (PaymentDeclined("do not honor", code="do_not_honor"), 1),
        (ProcessFailed("anvil: the RPC port did not happen within 30 s"), 1),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_ends_the_command_with_its_exit_status(error: Friendly, status: int) -> None:
    assert _exit_of(error) == status


@pytest.mark.parametrize(
    "error",
    [ConfigurationError("no keyring"), UsageError("unknown channel"), ProcessFailed("anvil")],
    ids=lambda error: type(error).__name__,
)
def test_setup_and_tool_errors_are_no_payment_failures(error: Exception) -> None:
    # A handler of payment failures (`except PaymqError`) never takes one for an outcome.
    assert not isinstance(error, PaymqError)


def test_any_other_exception_is_a_bug_and_keeps_its_traceback() -> None:
    @friendly
    def command() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        command()


def test_a_long_message_stays_on_one_line_and_its_brackets_are_not_markup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    message = "the payment store at sqlite:///" + "x" * 120 + " does not answer: [Errno 13] no"
    _exit_of(StoreUnavailable(message))
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAYMQ_HEARTBEAT_S", "0"),
        ("PAYMQ_AMQP_URL", "http://not-a-broker/"),
        ("PAYMQ_WEBHOOK_CONCURRENCY", "many"),
        ("PAYMQ_ETHEREUM_RPC_URL", "ws://127.0.0.1:8546"),
    ],
)
def test_invalid_settings_are_named_by_their_environment_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv(variable, value)
    with pytest.raises(typer.Exit) as ended:
        load_settings()
    assert ended.value.exit_code == 2
    assert f"\n  {variable}: " in capsys.readouterr().err


def test_a_contradiction_between_settings_is_reported_by_its_message_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYMQ_WEBHOOK_LEASE_S", "1")
    with pytest.raises(typer.Exit):
        load_settings()
    assert capsys.readouterr().err.endswith(
        "\n  webhook_lease_s must be longer than webhook_connect_timeout_s plus "
        "webhook_read_timeout_s, or a slow attempt loses its lease and is sent twice\n"
    )

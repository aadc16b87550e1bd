"""The broker's and the store's URLs read from files (PAYMQ_AMQP_URL_FILE,
PAYMQ_DATABASE_URL_FILE): Docker and Kubernetes secrets, which keep a password out of the
environment. A URL given both ways, or a file that cannot be read, stops start-up with a
message naming the variable and never what the file holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError

from common.settings import DEFAULT_AMQP_URL, Settings
from paymq.clikit import load_settings
from paymq_tools.processes import settings_env

BROKER_URL = "amqps://paymq:broker-s3cret@rabbit-1:5671/payments"
STORE_URL = "postgresql+psycopg://paymq:store-s3cret@db/paymq"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the developer's shell, nor a .env of theirs, reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMQ_") or name.upper() in ("AMQP_URL", "RABBITMQ_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """A secrets directory as Docker mounts it: one file per secret, with a trailing newline."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "amqp_url").write_text(BROKER_URL + "\n")
    (directory / "database_url").write_text(STORE_URL + "\n")
    return directory


def problems(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    """The messages Settings refuses these variables with, one per line."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    errors = refused.value.errors(include_input=False, include_url=False)
    return "\n".join(str(error["msg"]) for error in errors)


def test_both_urls_are_read_from_their_files_without_the_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, secrets: Path
) -> None:
    monkeypatch.setenv("PAYMQ_AMQP_URL_FILE", str(secrets / "amqp_url"))
    monkeypatch.setenv("PAYMQ_DATABASE_URL_FILE", str(secrets / "database_url"))

    settings = Settings(_env_file=None)

    assert settings.broker.amqp_url == BROKER_URL
    assert settings.store.database_url.get_secret_value() == STORE_URL
    assert "s3cret" not in repr(settings.store)


def test_without_a_file_the_default_urls_stay() -> None:
    settings = Settings(_env_file=None)
    assert settings.broker.amqp_url == DEFAULT_AMQP_URL
    assert settings.store.database_url.get_secret_value() == "sqlite:///paymq.db"


BROKER_NAMES = "PAYMQ_AMQP_URL (or AMQP_URL, RABBITMQ_URL)"


@pytest.mark.parametrize(
    ("variable", "value", "file_variable", "named"),
    [
        ("PAYMQ_AMQP_URL", "amqp://guest:guest@other/%2F", "PAYMQ_AMQP_URL_FILE", BROKER_NAMES),
        ("AMQP_URL", "amqp://guest:guest@other/%2F", "PAYMQ_AMQP_URL_FILE", BROKER_NAMES),
        ("PAYMQ_DATABASE_URL", "sqlite:///o.db", "PAYMQ_DATABASE_URL_FILE", "PAYMQ_DATABASE_URL"),
    ],
)
def test_a_url_given_both_ways_is_refused_naming_both_variables(
    monkeypatch: pytest.MonkeyPatch,
    secrets: Path,
    variable: str,
    value: str,
    file_variable: str,
    named: str,
) -> None:
    secret = secrets / file_variable.removeprefix("PAYMQ_").removesuffix("_FILE").lower()
    found = problems(monkeypatch, **{variable: value, file_variable: str(secret)})
    assert found == f"Value error, {file_variable} and {named} are both set: set only one of them"


@pytest.mark.parametrize("file_variable", ["PAYMQ_AMQP_URL_FILE", "PAYMQ_DATABASE_URL_FILE"])
def test_a_missing_file_is_refused_naming_its_variable_and_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, file_variable: str
) -> None:
    missing = tmp_path / "no-such-secret"
    found = problems(monkeypatch, **{file_variable: str(missing)})
    assert found == f"Value error, cannot read {file_variable} {missing}: No such file or directory"


def test_a_directory_for_a_file_is_refused(monkeypatch: pytest.MonkeyPatch, secrets: Path) -> None:
    found = problems(monkeypatch, PAYMQ_DATABASE_URL_FILE=str(secrets))
    assert found == f"Value error, cannot read PAYMQ_DATABASE_URL_FILE {secrets}: Is a directory"


def test_an_empty_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "amqp_url"
    empty.write_text("\n")
    found = problems(monkeypatch, PAYMQ_AMQP_URL_FILE=str(empty))
    assert found == f"Value error, PAYMQ_AMQP_URL_FILE {empty} is empty"


def test_a_file_that_is_no_text_is_refused_without_its_bytes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "database_url"
    binary.write_bytes(b"postgresql://paymq:\xff\xfe@db/paymq")
    found = problems(monkeypatch, PAYMQ_DATABASE_URL_FILE=str(binary))
    assert found == f"Value error, PAYMQ_DATABASE_URL_FILE {binary} is not UTF-8 text"


def test_a_broker_url_in_a_file_is_checked_like_the_variable_with_its_password_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = tmp_path / "amqp_url"
    wrong.write_text("http://paymq:broker-s3cret@rabbit-1/")
    found = problems(monkeypatch, PAYMQ_AMQP_URL_FILE=str(wrong))
    assert found.startswith("Value error, PAYMQ_AMQP_URL_FILE: the address (http://paymq:***@")
    assert "the scheme must be amqp:// or amqps://" in found
    assert "s3cret" not in found


def test_the_command_line_names_the_variable_and_never_prints_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    monkeypatch.setenv("PAYMQ_AMQP_URL_FILE", str(secrets / "amqp_url"))
    monkeypatch.setenv("PAYMQ_AMQP_URL", "amqp://guest:guest@other:5672/%2F")

    with pytest.raises(typer.Exit) as ended:
        load_settings()

    assert ended.value.exit_code == 2
    printed = capsys.readouterr().err
    assert "PAYMQ_AMQP_URL_FILE and PAYMQ_AMQP_URL" in printed
    assert "s3cret" not in printed


def test_replace_keeps_reading_the_url_from_its_file(
    monkeypatch: pytest.MonkeyPatch, secrets: Path
) -> None:
    monkeypatch.setenv("PAYMQ_AMQP_URL_FILE", str(secrets / "amqp_url"))
    monkeypatch.setenv("PAYMQ_DATABASE_URL_FILE", str(secrets / "database_url"))

    changed = Settings(_env_file=None).replace(topology_prefix="shop", database_timeout_s=3.0)

    assert (changed.broker.topology_prefix, changed.broker.amqp_url) == ("shop", BROKER_URL)
    assert changed.store.database_url.get_secret_value() == STORE_URL
    with pytest.raises(ValidationError, match="both set"):
        changed.replace(amqp_url="amqp://guest:guest@other:5672/%2F")


def test_a_child_process_is_given_the_files_never_the_urls(
    monkeypatch: pytest.MonkeyPatch, secrets: Path
) -> None:
    monkeypatch.setenv("PAYMQ_AMQP_URL_FILE", str(secrets / "amqp_url"))
    monkeypatch.setenv("PAYMQ_DATABASE_URL_FILE", str(secrets / "database_url"))
    settings = Settings(_env_file=None)

    env = settings_env(settings, {})

    assert env["PAYMQ_AMQP_URL_FILE"] == str(secrets / "amqp_url")
    assert env["PAYMQ_DATABASE_URL_FILE"] == str(secrets / "database_url")
    assert "PAYMQ_AMQP_URL" not in env
    assert "PAYMQ_DATABASE_URL" not in env
    assert not any("s3cret" in value for value in env.values())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == settings

"""Every `paymq` command meets a broker or a store that does not answer with one line on
standard error, `error: ...`, saying which one, and exit status 2: no traceback. Real
subprocesses; "down" is a closed local port (RabbitMQ, PostgreSQL) or a SQLite file that
cannot be opened."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from common.keygen import init_keys
from tests.integration.helpers import cli_env, run_cli

pytestmark = pytest.mark.integration

BROKER_DOWN = "amqp://guest:guest@127.0.0.1:1/%2F"
POSTGRES_DOWN = "postgresql+psycopg://paymq:s3cret@127.0.0.1:1/paymq"
PAYMENT_ID = "00000000-0000-4000-8000-000000000001"


def _env(**values: str) -> dict[str, str]:
    """The child's environment: as wide as a terminal that is not one (rich's default), so a
    message wrapped over several lines shows."""
    return cli_env(COLUMNS="80", **values)


def _one_error_line(completed: subprocess.CompletedProcess[str]) -> str:
    """The command said one thing, on one line of standard error, without a traceback."""
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output
    [line] = completed.stderr.splitlines()
    assert line.startswith("error: "), output
    return line


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    init_keys(keys, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="s-1")
    return keys


@pytest.fixture
def store_url(tmp_path: Path, keys_dir: Path) -> str:
    """A SQLite store with its schema, that answers."""
    url = f"sqlite:///{tmp_path / 'paymq.db'}"
    env = _env(PAYMQ_DATABASE_URL=url, PAYMQ_KEYS_DIR=str(keys_dir))
    upgraded = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    return url


def _unopenable_sqlite(tmp_path: Path) -> str:
    """A SQLite path under a regular file: no one can create or open it, root included."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return f"sqlite:///{blocker / 'paymq.db'}"


# --- the broker is down ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("results", "tail", "--count", "1", "--timeout-s", "5"),
        ("dlq", "list"),
        ("dlq", "show", "some-message-id"),
        ("dlq", "replay", "--all"),
        ("dlq", "discard", "--all", "--reason", "test", "--yes"),
        ("topology", "declare"),
        ("top", "--once"),
    ],
    ids=" ".join,
)
def test_a_command_needing_the_broker_says_in_one_line_that_it_is_down_and_exits_2(
    command: tuple[str, ...], tmp_path: Path, keys_dir: Path, store_url: str
) -> None:
    # Given a broker that does not answer (and keys and a store that are fine)
    env = _env(
        PAYMQ_AMQP_URL=BROKER_DOWN, PAYMQ_KEYS_DIR=str(keys_dir), PAYMQ_DATABASE_URL=store_url
    )
    # When the command runs
    completed = run_cli(*command, env=env, cwd=tmp_path)
    # Then it says so in one line, the password hidden, and exits 2
    line = _one_error_line(completed)
    assert completed.returncode == 2, line
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in line
    assert completed.stdout == ""


# --- the store is down -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("status", PAYMENT_ID),
        ("status", PAYMENT_ID, "--json"),
        ("db", "current"),
        ("db", "upgrade"),
        ("top", "--once"),
        ("webhooks", "status"),
        ("dlq", "discard", "--all", "--reason", "test", "--yes"),
        ("dlq", "discarded"),
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_a_command_needing_the_store_says_in_one_line_that_it_is_down_and_exits_2(
    command: tuple[str, ...], store: str, tmp_path: Path, keys_dir: Path
) -> None:
    # Given a store that cannot be reached: PostgreSQL on a closed port, or a SQLite file that
    # cannot be opened
    url = POSTGRES_DOWN if store == "postgresql" else _unopenable_sqlite(tmp_path)
    env = _env(PAYMQ_DATABASE_URL=url, PAYMQ_KEYS_DIR=str(keys_dir))
    # When the command runs
    completed = run_cli(*command, env=env, cwd=tmp_path)
    # Then it says which store, without its password, in one line, and exits 2
    line = _one_error_line(completed)
    assert completed.returncode == 2, line
    assert "payment store" in line
    if store == "postgresql":
        assert "postgresql+psycopg://paymq:***@127.0.0.1:1/paymq" in line
        assert "s3cret" not in line
    else:
        assert "a-file/paymq.db" in line
    assert completed.stdout == ""


# --- called wrong, or pointed at the wrong place ------------------------------------------------


def test_a_worker_for_an_unknown_channel_names_the_known_ones_in_one_line_and_exits_2(
    tmp_path: Path,
) -> None:
    # Given no broker and no store either: the channel is checked before anything is reached
    env = _env(PAYMQ_AMQP_URL=BROKER_DOWN, PAYMQ_DATABASE_URL=POSTGRES_DOWN)
    completed = run_cli("worker", "cardd", env=env, cwd=tmp_path)
    line = _one_error_line(completed)
    assert completed.returncode == 2, line
    assert line == "error: unknown channel 'cardd'; known: card, digital_currency"


def test_dlq_list_on_a_topology_never_declared_says_so_in_one_line(
    tmp_path: Path, amqp_url: str
) -> None:
    env = _env(AMQP_URL=amqp_url, PAYMQ_TOPOLOGY_PREFIX=f"never-{uuid.uuid4().hex[:8]}")
    completed = run_cli("dlq", "list", env=env, cwd=tmp_path)
    line = _one_error_line(completed)
    assert completed.returncode == 1, line
    assert "does not exist" in line

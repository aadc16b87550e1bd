"""`paymq db` as an operator runs it (real subprocesses): a backup that paymq's commands read
as the store, and the refusals that say in one line what to do instead."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path

import pytest

from common.clock import SystemClock
from store.claims import Claims
from store.database import create_store_engine, head_revision, upgrade
from store.records import Acquired, NewPayment, OutcomeRecord
from store.states import State
from tests.integration.helpers import cli_env, run_cli

pytestmark = pytest.mark.integration


def _output(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stdout + completed.stderr


def _one_error_line(completed: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in _output(completed), _output(completed)
    [line] = completed.stderr.splitlines()
    assert line.startswith("error: "), _output(completed)
    return line


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    """A SQLite store holding one succeeded payment: (its URL, the payment id)."""
    url = f"sqlite:///{tmp_path / 'paymq.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    claims = Claims(engine, SystemClock(), owner="test", lease_ms=60_000)
    payment_id = str(uuid.uuid4())
    new = NewPayment(
        payment_id=payment_id,
        scope="shop",
        idempotency_key="order-1",
        request_hash="h",
        request_message_id="m-1",
        channel="card",
        merchant_reference="order-1",
        amount_minor=1050,
        currency="USD",
        payment_created_ms=SystemClock().now_ms(),
    )
    claim = claims.claim(new)
    assert isinstance(claim, Acquired)
    claims.finish(
        payment_id,
        OutcomeRecord(State.SUCCEEDED, 1, False, provider="sandbox", provider_reference="ch_1"),
        None,
        token=claim.token,
    )
    claims.close()
    engine.dispose()
    return url, payment_id


def test_a_backup_is_a_store_that_status_reads_as_it_was(
    store: tuple[str, str], tmp_path: Path
) -> None:
    url, payment_id = store
    target = tmp_path / "backups" / "paymq-1.db"
    target.parent.mkdir()
    # When the operator backs the store up
    done = run_cli("db", "backup", str(target), env=cli_env(PAYMQ_DATABASE_URL=url), cwd=tmp_path)
    # Then it says what it copied
    assert done.returncode == 0, _output(done)
    assert f"backed up the payment store to {target}: schema {head_revision()}, 1 payment," in (
        done.stdout
    )
    # And paymq reads the backup as the store: its schema, and the payment as it was
    on_backup = cli_env(PAYMQ_DATABASE_URL=f"sqlite:///{target}")
    current = run_cli("db", "current", env=on_backup, cwd=tmp_path)
    assert current.stdout.strip() == f"store: {head_revision()}, needed: {head_revision()}"
    status = run_cli("status", payment_id, "--json", env=on_backup, cwd=tmp_path)
    assert status.returncode == 0, _output(status)
    assert '"state": "succeeded"' in status.stdout


def test_a_backup_over_an_existing_file_is_refused_and_the_file_kept(
    store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = store
    target = tmp_path / "paymq-1.db"
    target.write_bytes(b"an older backup")
    refused = run_cli(
        "db", "backup", str(target), env=cli_env(PAYMQ_DATABASE_URL=url), cwd=tmp_path
    )
    assert refused.returncode == 2
    assert f"{target} exists: name a new file" in _one_error_line(refused)
    assert target.read_bytes() == b"an older backup"


def test_a_backup_of_a_postgresql_store_is_refused_naming_its_tools(tmp_path: Path) -> None:
    env = cli_env(PAYMQ_DATABASE_URL="postgresql+psycopg://paymq:s3cret@127.0.0.1:1/paymq")
    refused = run_cli("db", "backup", str(tmp_path / "b.db"), env=env, cwd=tmp_path)
    assert refused.returncode == 1
    line = _one_error_line(refused)
    assert "pg_dump" in line
    assert "s3cret" not in line


def test_db_upgrade_on_a_store_a_newer_paymq_migrated_says_so_in_one_line(
    store: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = store
    with closing(sqlite3.connect(tmp_path / "paymq.db")) as database, database:
        database.execute("UPDATE alembic_version SET version_num = '9999'")
    refused = run_cli("db", "upgrade", env=cli_env(PAYMQ_DATABASE_URL=url), cwd=tmp_path)
    assert refused.returncode == 1
    assert "is at schema 9999, which this paymq does not know" in _one_error_line(refused)

"""Reads on a SQLite store take no write lock: the API's and the CLI's lookups, the reconciler's
scans and the gauges answer while another process is mid-write, and no writer waits for them.
Writes, and the health ping that stands for them, still take the lock as they begin."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from common.errors import StoreUnavailable
from store.database import StoreTimeouts, create_store_engine, reading, upgrade
from store.outage import ping, unavailable_as_retryable
from store.views import PaymentViews

#: Short: the write below must give up on the lock, and it waits this long first.
TIMEOUT_S = 0.3


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "payments.db"


@pytest.fixture
def engine(database: Path) -> Iterator[Engine]:
    engine = create_store_engine(
        f"sqlite:///{database}", timeouts=StoreTimeouts(connect_s=1.0, timeout_s=TIMEOUT_S)
    )
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer_elsewhere(database: Path, engine: Engine) -> Iterator[sqlite3.Connection]:
    """Another process's writer, in the middle of its transaction."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def test_reads_answer_while_another_process_holds_the_write_lock(
    engine: Engine, writer_elsewhere: sqlite3.Connection
) -> None:
    assert PaymentViews(engine).stored_result("no-such-payment") is None
    with reading(engine) as connection:
        assert connection.execute(text("SELECT count(*) FROM payments")).scalar_one() == 0


def test_a_write_still_takes_the_write_lock_as_it_begins(
    engine: Engine, writer_elsewhere: sqlite3.Connection
) -> None:
    with pytest.raises(StoreUnavailable), unavailable_as_retryable(), engine.begin() as connection:
        connection.execute(text("SELECT 1"))


def test_the_health_ping_asks_for_the_write_lock_since_it_says_whether_payments_can_be_recorded(
    engine: Engine, writer_elsewhere: sqlite3.Connection
) -> None:
    with pytest.raises(StoreUnavailable):
        ping(engine)


def test_a_read_holds_back_no_writer(engine: Engine, database: Path) -> None:
    with reading(engine) as connection:
        connection.execute(text("SELECT count(*) FROM payments")).scalar_one()  # open, mid-read
        other = sqlite3.connect(database, isolation_level=None, timeout=0)  # no busy wait
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
        finally:
            other.close()

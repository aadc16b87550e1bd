"""`paymq db backup` on SQLite: a copy taken while a worker records payments is one consistent
snapshot that paymq can run on, it waits for no writer, and it never replaces a file."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine

from common.clock import SystemClock
from common.errors import ConfigurationError
from store.backup import Backup, backup_sqlite
from store.claims import Claims
from store.database import create_store_engine, head_revision, require_current, upgrade
from store.records import Acquired, NewPayment, OutcomeRecord
from store.states import State
from store.views import PaymentViews

#: Payments whose state is not where their last transition led: a copy torn between commits.
TORN = """
SELECT count(*) FROM payments p
WHERE p.state != (SELECT t.to_state FROM transitions t WHERE t.payment_id = p.payment_id
                  ORDER BY t.id DESC LIMIT 1)
"""


def _new_payment() -> NewPayment:
    payment_id = str(uuid.uuid4())
    return NewPayment(
        payment_id=payment_id,
        scope="shop",
        idempotency_key=f"order-{payment_id}",
        request_hash="h",
        request_message_id=f"m-{payment_id}",
        channel="card",
        merchant_reference=f"order-{payment_id[:8]}",
        amount_minor=1050,
        currency="USD",
        payment_created_ms=SystemClock().now_ms(),
    )


def _pay(claims: Claims) -> str:
    """One payment as a worker records it: the claim, then the outcome (two transactions)."""
    new = _new_payment()
    claim = claims.claim(new)
    assert isinstance(claim, Acquired)
    outcome = OutcomeRecord(State.SUCCEEDED, 1, False, provider="sandbox", provider_reference="c")
    claims.finish(new.payment_id, outcome, None, token=claim.token)
    return new.payment_id


class Writer(threading.Thread):
    """A worker's writes, on an engine of its own, until stopped; what it committed, in order."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_store_engine(url)
        self.claims = Claims(self.engine, SystemClock(), owner="writer", lease_ms=60_000)
        self.paid: list[str] = []
        self.error: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.paid.append(_pay(self.claims))
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)
        self.claims.close()
        self.engine.dispose()


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'paymq.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _torn_and_count(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as copy:
        [(torn,)] = copy.execute(TORN).fetchall()
        [(payments,)] = copy.execute("SELECT count(*) FROM payments").fetchall()
    return torn, payments


def _run_on(path: Path) -> Engine:
    engine = create_store_engine(f"sqlite:///{path}")
    require_current(engine)
    return engine


def test_a_backup_taken_while_a_worker_records_payments_is_one_snapshot_paymq_runs_on(
    store_url: str, tmp_path: Path
) -> None:
    # Given a worker recording payments without pause, each in two transactions
    writer = Writer(store_url)
    writer.start()
    try:
        overlapped: list[tuple[Backup, int, int]] = []
        deadline = time.monotonic() + 20
        n = 0
        # When backups are taken until one was taken while payments were being committed
        while not overlapped and time.monotonic() < deadline:
            before = len(writer.paid)
            n += 1
            backup = backup_sqlite(store_url, tmp_path / f"backup-{n}.db", timeout_s=5)
            after = len(writer.paid)
            # Then every copy is a snapshot: no payment torn between its transactions, and
            # neither fewer payments than were committed before it began nor more than after
            torn, payments = _torn_and_count(backup.path)
            assert torn == 0
            assert backup.payments == payments
            assert before <= payments <= after + 1  # + the one committed, not yet counted
            assert backup.revision == head_revision()
            if 0 < before < after:
                overlapped.append((backup, before, after))
    finally:
        writer.stop()
    assert writer.error is None, writer.error  # and the worker was never held back
    assert overlapped, "no backup overlapped a commit in 20 s"
    [(backup, before, _)] = overlapped
    # And the copy is one file, with no -wal or -shm beside it
    assert sorted(p.name for p in tmp_path.glob(f"{backup.path.name}*")) == [backup.path.name]
    # And paymq runs on the copy: a payment recorded before it began reads as recorded, and
    # a worker can record new payments in it
    engine = _run_on(backup.path)
    try:
        described = PaymentViews(engine).describe(writer.paid[before - 1])
        assert described is not None
        assert described["state"] == "succeeded"
        claims = Claims(engine, SystemClock(), owner="after-restore", lease_ms=60_000)
        try:
            _pay(claims)
        finally:
            claims.close()
    finally:
        engine.dispose()


def test_a_backup_waits_for_no_writer_and_holds_only_what_was_committed(
    store_url: str, tmp_path: Path
) -> None:
    # Given a payment committed, and a writer holding the write lock with one not committed
    engine = create_store_engine(store_url)
    claims = Claims(engine, SystemClock(), owner="w", lease_ms=60_000)
    committed = _pay(claims)
    claims.close()
    engine.dispose()
    database = tmp_path / "paymq.db"
    with closing(sqlite3.connect(database, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("DELETE FROM transitions WHERE payment_id = ?", (committed,))
        # When a backup is taken meanwhile, with a short timeout
        backup = backup_sqlite(store_url, tmp_path / "backup.db", timeout_s=1)
        # Then it did not wait for the lock, and holds the last commit only
        holder.execute("COMMIT")
    assert backup.payments == 1
    with closing(sqlite3.connect(backup.path)) as copy:
        [(transitions,)] = copy.execute(
            "SELECT count(*) FROM transitions WHERE payment_id = ?", (committed,)
        ).fetchall()
    assert transitions == 2  # received -> processing -> succeeded, as committed


def test_a_backup_never_replaces_a_file_and_leaves_nothing_half_written(
    store_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "backup.db"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(FileExistsError):
        backup_sqlite(store_url, target, timeout_s=1)
    assert target.read_bytes() == b"yesterday's backup"
    assert sorted(p.name for p in tmp_path.glob("*backup.db*")) == ["backup.db"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+psycopg://paymq@db/paymq", "back PostgreSQL up with pg_dump"),
        ("sqlite:///{tmp}/missing.db", "there is no payment store at"),
        ("sqlite:///{tmp}/not-paymq.db", "holds no paymq schema"),
    ],
)
def test_a_backup_of_no_sqlite_paymq_store_is_refused_saying_why(
    url: str, says: str, tmp_path: Path
) -> None:
    with closing(sqlite3.connect(tmp_path / "not-paymq.db")) as other:
        other.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(ConfigurationError, match=says):
        backup_sqlite(url.format(tmp=tmp_path), tmp_path / "backup.db", timeout_s=1)
    assert not (tmp_path / "backup.db").exists()
    assert not (tmp_path / "missing.db").exists()  # and creates no empty store

"""The store's writer (store/writer.py): the writes that arrive together are committed in one
transaction, each caller learns of its own write only once it is committed, and a write that
cannot be made fails alone.

Deterministic: a gate holds the writer while the test hands it work, and the test waits (with
a deadline, never a measure of speed) until the writer holds all of it before opening the gate.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from common.clock import SystemClock
from common.errors import ClaimLost, StoreUnavailable
from store.claims import Claims
from store.database import StoreTimeouts, create_store_engine, upgrade
from store.records import Acquired, Attempt, NewPayment, OutcomeRecord, StoredResult
from store.schema import payments
from store.states import State
from store.writelock import HostWriteLock
from store.writer import MAX_BATCH, Writer

DEADLINE_S = 10.0

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(engine: Engine) -> Iterator[Writer]:
    writer = Writer(engine)
    yield writer
    writer.close()


class Counted:
    """Transactions committed on an engine, and the statements SQLite ran for it, as its own
    trace hook sees them: whichever way they were sent (SQLAlchemy or the driver, see
    store/driver.py), and each row of an executemany as one, as it is for the database."""

    def __init__(self, engine: Engine) -> None:
        self.commits = 0
        self.statements = 0
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "checkout", self._trace)

    def _commit(self, _connection: Any) -> None:
        self.commits += 1

    def _trace(self, dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.set_trace_callback(self._statement)

    def _statement(self, _sql: str) -> None:
        self.statements += 1


class Gate:
    """A unit that holds the writer until the test opens it."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._entered = threading.Event()
        self._open = threading.Event()
        self._thread = threading.Thread(target=lambda: writer.run(self._hold), daemon=True)
        self._thread.start()
        assert self._entered.wait(DEADLINE_S)

    def _hold(self, _connection: Connection) -> None:
        self._entered.set()
        assert self._open.wait(DEADLINE_S)

    def open_when_waiting(self, units: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while self._writer.waiting < units:
            assert time.monotonic() < deadline, f"{self._writer.waiting} of {units} handed over"
            time.sleep(0.001)
        self._open.set()
        self._thread.join(DEADLINE_S)


def note(text: str) -> Callable[[Connection], int]:
    def work(connection: Connection) -> int:
        result = connection.execute(insert(notes).values(text=text))
        return int(result.inserted_primary_key[0])

    return work


def texts(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(notes.c.text)).scalars())


def hand_over(writer: Writer, works: list[Callable[[Connection], Any]]) -> list[Future[Any]]:
    pool = ThreadPoolExecutor(len(works))
    futures = [pool.submit(writer.run, work) for work in works]
    pool.shutdown(wait=False)
    return futures


def test_writes_handed_over_together_are_committed_in_one_transaction(
    engine: Engine, writer: Writer
):
    counted = Counted(engine)
    gate = Gate(writer)
    futures = hand_over(writer, [note(f"n{index}") for index in range(50)])
    gate.open_when_waiting(50)
    assert sorted(f.result(DEADLINE_S) for f in futures) == list(range(1, 51))
    assert counted.commits == 2  # the gate's, then the fifty together
    assert writer.counts.transactions == 2
    assert texts(engine) == {f"n{index}" for index in range(50)}


def test_a_batch_is_never_larger_than_its_bound(engine: Engine):
    writer = Writer(engine, max_batch=8)
    try:
        gate = Gate(writer)
        futures = hand_over(writer, [note(f"n{index}") for index in range(20)])
        gate.open_when_waiting(20)
        for future in futures:
            future.result(DEADLINE_S)
        assert writer.counts.transactions == 1 + 3  # the gate, then 8 + 8 + 4
    finally:
        writer.close()
    assert MAX_BATCH >= 64  # a worker's in-flight payments fit in one batch


def test_a_caller_hears_of_its_write_only_once_it_is_committed(
    engine: Engine, writer: Writer, tmp_path: Path
):
    seen_from_elsewhere: list[set[str]] = []

    def look(connection: Connection) -> None:
        connection.execute(insert(notes).values(text="mine"))
        # another process's view, before the commit (a plain read, no write lock wanted)
        with contextlib.closing(sqlite3.connect(tmp_path / "writer.db")) as elsewhere:
            rows = elsewhere.execute("SELECT text FROM notes")
            seen_from_elsewhere.append({text for (text,) in rows})

    writer.run(look)
    assert seen_from_elsewhere == [set()]
    assert texts(engine) == {"mine"}  # and committed when run() returned


def refused(_connection: Connection) -> None:
    raise ClaimLost("payment p: this claim is no longer the current one")


def half_written(connection: Connection) -> None:
    connection.execute(insert(notes).values(text="half"))
    raise KeyError("a bug after the first row")


def duplicate(connection: Connection) -> None:
    connection.execute(insert(notes).values(id=1, text="again"))


@pytest.mark.parametrize(
    ("faulty", "raised", "rolled_back"),
    [
        # a refusal writes nothing: the batch carries on
        (refused, ClaimLost, 0),
        # a bug after a first row: the batch is rolled back, each write runs again alone
        (half_written, KeyError, 1),
        # a statement the database refuses (the note with id 1 exists): the same
        (duplicate, StoreUnavailable, 1),
    ],
)
def test_a_write_that_cannot_be_made_fails_alone_and_the_rest_of_its_batch_commits(
    engine: Engine,
    writer: Writer,
    faulty: Callable[[Connection], None],
    raised: type[Exception],
    rolled_back: int,
):
    writer.run(note("first"))
    gate = Gate(writer)
    futures = hand_over(writer, [note("a"), faulty, note("b")])
    gate.open_when_waiting(3)
    assert futures[0].result(DEADLINE_S)
    assert futures[2].result(DEADLINE_S)
    with pytest.raises(raised):
        futures[1].result(DEADLINE_S)
    assert texts(engine) == {"first", "a", "b"}  # nothing of the faulty write
    assert writer.counts.rolled_back == rolled_back


def test_a_store_that_does_not_answer_fails_every_write_of_the_batch_at_once(tmp_path: Path):
    # Given a SQLite store whose writers' lock another process holds past the timeout
    engine = create_store_engine(
        f"sqlite:///{tmp_path / 'held.db'}", timeouts=StoreTimeouts(1.0, 0.2)
    )
    metadata.create_all(engine)
    writer = Writer(engine)
    other = HostWriteLock(Path(f"{tmp_path / 'held.db'}.writer.lock"), timeout_s=1.0)
    try:
        with other.held():
            futures = hand_over(writer, [note("a"), note("b")])
            errors = [f.exception(DEADLINE_S) for f in futures]
        assert all(isinstance(error, StoreUnavailable) for error in errors), errors
        assert all("not free" in str(error.__cause__) for error in errors if error)
        # and once the lock is free again, writes go through
        assert writer.run(note("c"))
    finally:
        writer.close()
        engine.dispose()
    assert texts_of(tmp_path / "held.db") == {"c"}


def texts_of(path: Path) -> set[str]:
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        return texts(engine)
    finally:
        engine.dispose()


def test_close_commits_what_was_handed_over_and_refuses_what_comes_after(
    engine: Engine, writer: Writer
):
    gate = Gate(writer)
    futures = hand_over(writer, [note("a"), note("b")])
    deadline = time.monotonic() + DEADLINE_S
    while writer.waiting < 2:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    closing = threading.Thread(target=writer.close)
    closing.start()
    gate.open_when_waiting(2)
    closing.join(DEADLINE_S)
    assert [bool(f.result(DEADLINE_S)) for f in futures] == [True, True]
    with pytest.raises(StoreUnavailable, match="closed"):
        writer.run(note("late"))
    assert texts(engine) == {"a", "b"}


def test_the_write_lock_wakes_a_waiting_writer_when_it_is_released(tmp_path: Path):
    path = tmp_path / "store.db.writer.lock"
    first, second = HostWriteLock(path, timeout_s=DEADLINE_S), HostWriteLock(path, 0.05)
    with first.held():
        with pytest.raises(Exception, match="not free within"), second.held():
            pass
        waiting = HostWriteLock(path, timeout_s=DEADLINE_S)
        taken = threading.Event()

        def take() -> None:
            with waiting.held():
                taken.set()

        thread = threading.Thread(target=take)
        thread.start()
        assert not taken.wait(0.05)  # held: the other waits
    thread.join(DEADLINE_S)
    assert taken.is_set()  # released: the waiter had it


# --- the payment path: transactions per payment (the regression guard) ---------------------


@pytest.fixture
def claims(tmp_path: Path) -> Iterator[Claims]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'paymq.db'}")
    upgrade(engine)
    claims = Claims(engine, SystemClock(), owner="guard", lease_ms=60_000)
    yield claims
    claims.close()
    engine.dispose()


def new_payment() -> NewPayment:
    payment_id = str(uuid.uuid4())
    return NewPayment(payment_id, "shop", payment_id, "h", "m", "card", "r", 1000, "USD", 0, "fake")


def outcome() -> OutcomeRecord:
    result = StoredResult("t.results", "card.succeeded", uuid.uuid4().hex, "t", {}, b"{}")
    return OutcomeRecord(State.SUCCEEDED, 1, False, provider="fake", result=result)


#: Statements SQLite runs for a payment, whatever the batch: its claim's transition, and its
#: outcome's UPDATE, transition and attempt (rows of an executemany, each one statement).
STATEMENTS_PER_PAYMENT = 4
#: And per batch, whatever its size: BEGIN, the one INSERT of all its claims, COMMIT.
STATEMENTS_PER_CLAIM_BATCH = 3
#: BEGIN and COMMIT around a batch of outcomes, or around a gate.
STATEMENTS_PER_OTHER_BATCH = 2


def test_500_payments_cost_four_transactions_per_64_and_four_statements_per_payment(
    claims: Claims,
):
    """The batched design's figure: the claims of the payments in flight together are one
    transaction, their outcomes another. Grows past it, and this fails."""
    counted = Counted(claims.engine)
    payments_count, in_flight = 500, 64
    done = 0
    while done < payments_count:
        group = [new_payment() for _ in range(min(in_flight, payments_count - done))]
        gate = Gate(claims.writer)
        pool = ThreadPoolExecutor(len(group))
        taken = [pool.submit(claims.claim, new) for new in group]
        gate.open_when_waiting(len(group))
        tokens = [f.result(DEADLINE_S) for f in taken]
        assert all(isinstance(claim, Acquired) for claim in tokens)
        gate = Gate(claims.writer)
        finished = [
            pool.submit(
                claims.finish, new.payment_id, outcome(), Attempt(1, "succeeded"), token=t.token
            )
            for new, t in zip(group, tokens, strict=True)
            if isinstance(t, Acquired)
        ]
        gate.open_when_waiting(len(group))
        for future in finished:
            future.result(DEADLINE_S)
        pool.shutdown()
        done += len(group)
    rounds = -(-payments_count // in_flight)  # 8
    gates = 2 * rounds
    assert counted.commits - gates == 2 * rounds  # 16 transactions for 500 payments
    assert counted.statements <= payments_count * STATEMENTS_PER_PAYMENT + rounds * (
        STATEMENTS_PER_CLAIM_BATCH + STATEMENTS_PER_OTHER_BATCH
    ) + gates * (STATEMENTS_PER_OTHER_BATCH)  # 2,072
    with claims.engine.connect() as connection:
        states = connection.execute(select(payments.c.state, func.count()).group_by("state"))
        assert dict(states.all()) == {State.SUCCEEDED.value: payments_count}


def test_a_payment_alone_costs_two_transactions(claims: Claims):
    counted = Counted(claims.engine)
    new = new_payment()
    claim = claims.claim(new)
    assert isinstance(claim, Acquired)
    claims.finish(new.payment_id, outcome(), Attempt(1, "succeeded"), token=claim.token)
    assert counted.commits == 2


def test_a_stale_claim_in_a_batch_is_refused_and_the_others_are_recorded(claims: Claims):
    group = [new_payment() for _ in range(5)]
    tokens = [claims.claim(new) for new in group]
    gate = Gate(claims.writer)
    pool = ThreadPoolExecutor(5)
    futures = [
        pool.submit(
            claims.finish,
            new.payment_id,
            outcome(),
            None,
            token="stale" if index == 2 else claim.token,  # type: ignore[union-attr]
        )
        for index, (new, claim) in enumerate(zip(group, tokens, strict=True))
    ]
    gate.open_when_waiting(5)
    errors = [f.exception(DEADLINE_S) for f in futures]
    pool.shutdown()
    assert [type(e).__name__ if e else None for e in errors] == [
        None,
        None,
        "ClaimLost",
        None,
        None,
    ]
    for index, new in enumerate(group):
        stored = claims.stored_result(new.payment_id)
        assert (stored is None) == (index == 2)

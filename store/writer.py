"""Group commit: a process's payment writes go through one writer thread, which commits the work
that arrived together in one transaction.

Why (docs/performance.md, "Where the time goes"): a transaction per write, each one a trip
through the process's one SQLite connection contended by every pool thread, cost more than the
database's own work by far, and more the busier the machine. Here each pool thread hands its
write to the writer and waits for its answer; the writer owns the connection for a batch, so the
threads no longer queue for it one by one, and a batch of writes costs one BEGIN and one
commit (one fsync, one lock taken and released) instead of one each. Within a batch the writes
of one kind go to the database together (`Kind.bulk`: an executemany, one INSERT of many rows),
so a batch costs a handful of statements, not a handful per payment.

What the callers may rely on:
- **An answer is given only after its batch committed.** A caller that is told a claim is taken,
  or a result recorded, holds a committed fact: the claim is committed before its provider call,
  the result before its publish. Nothing is acked by the consumer before that (workers/consumer).
- **A unit of work fails alone.** `Kind.bulk` writes its units' rows and answers each of them;
  where one cannot be written as asked (a guarded UPDATE matched fewer rows than units), it
  raises, and so does anything the database refuses or a bug: the whole batch is rolled back,
  and its units run again one transaction each (`Kind.one`), where a unit either writes its rows
  or raises one of `REFUSALS` (ClaimLost) before writing any. Only the faulty unit fails, and
  nothing of a rolled-back batch was ever reported done.
- **A store that does not answer fails the batch at once.** When the database is unavailable
  (down, a lock held past the timeout, the link lost), every unit of the batch gets its own
  StoreUnavailable, as a direct call would have; nothing is retried on a guess.

No window is waited for: while one batch commits, the next gathers. At a low rate a unit is
committed alone and at once (no added latency); under load batches grow by themselves, up to
`max_batch`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from common.errors import ClaimLost, StoreUnavailable
from store.outage import unavailable_as_retryable
from store.writelock import host_write_lock

logger = logging.getLogger("paymq.store")

R = TypeVar("R")
U = TypeVar("U")

#: Raised by a unit before it writes anything: the batch carries on.
REFUSALS: tuple[type[Exception], ...] = (ClaimLost,)
#: Units per transaction at most. Bounded so one batch's statements stay well within a
#: statement timeout, and its rollback (rare) costs a bounded number of single retries.
MAX_BATCH = 128
#: SQLSTATEs after which the same work may well succeed at once: a deadlock or a serialization
#: failure between two processes' batches (PostgreSQL). Their units run again singly.
_RETRY_SINGLY = frozenset({"40001", "40P01"})


class Kind(Protocol[U, R]):
    """A kind of write: how a batch of its units is written, and how one unit is alone."""

    def bulk(self, connection: Connection, units: list[U]) -> list[R | Exception]:
        """Write the units; an answer for each (a value, or one of REFUSALS for a unit that
        wrote nothing). Raise to have the batch rolled back and its units run one by one."""
        ...

    def one(self, connection: Connection, unit: U) -> R:
        """Write one unit in a transaction of its own; raise one of REFUSALS before writing
        anything when it may not be written."""
        ...


class Batched(Generic[U, R]):
    """A Kind from its two functions: how a batch of units is written, and how one is."""

    def __init__(
        self,
        bulk: Callable[[Connection, list[U]], list[R]],
        one: Callable[[Connection, U], R],
    ) -> None:
        self._bulk = bulk
        self._one = one

    def bulk(self, connection: Connection, units: list[U]) -> list[R | Exception]:
        return list(self._bulk(connection, units))

    def one(self, connection: Connection, unit: U) -> R:
        return self._one(connection, unit)


class _Single(Generic[R]):
    """A kind of one: a function of the connection (the writes nobody batches)."""

    def bulk(
        self, connection: Connection, units: list[Callable[[Connection], R]]
    ) -> list[R | Exception]:
        answers: list[R | Exception] = []
        for work in units:
            try:
                answers.append(work(connection))
            except REFUSALS as refusal:
                answers.append(refusal)
        return answers

    def one(self, connection: Connection, unit: Callable[[Connection], R]) -> R:
        return unit(connection)


_SINGLE: _Single[Any] = _Single()


class _Answer(Generic[R]):
    """The writer's answer to the one thread waiting for it: a lock taken at birth and let go
    once the answer is in, the cheapest hand-over between two threads in CPython (a Future
    wakes its waiter through a Condition: more Python and more locks, for every write)."""

    __slots__ = ("_error", "_lock", "_settled", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._settled = False
        self._value: R | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._settled

    def set_result(self, value: R) -> None:
        self._value = value
        self._settle()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._settle()

    def _settle(self) -> None:
        if not self._settled:  # the writer's thread alone settles answers
            self._settled = True
            self._lock.release()

    def result(self) -> R:
        with self._lock:  # free once settled
            pass
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass
class _Unit(Generic[R]):
    kind: Kind[Any, R]
    data: Any
    future: _Answer[R]


@dataclass
class WriterCounts:
    """What the writer did since it was built: transactions committed (or tried), and units."""

    transactions: int = 0
    units: int = 0
    rolled_back: int = 0


class Writer:
    """One process's store writer. `run` from any thread; the thread starts on first use and
    stops on `close`."""

    def __init__(
        self, engine: Engine, *, max_batch: int = MAX_BATCH, name: str = "paymq-store-writer"
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._engine = engine
        self._host_lock = (
            host_write_lock(engine.url.database, _pool_timeout_s(engine))
            if engine.dialect.name == "sqlite"
            else None
        )
        self._max_batch = max_batch
        self._name = name
        # Handed over by many threads, taken by one: a deque (appends and pops are atomic)
        # and an event that wakes the writer; the lock only guards starting and stopping.
        self._queue: deque[_Unit[Any]] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopped = False
        self.counts = WriterCounts()

    def write(self, kind: Kind[U, R], unit: U) -> R:
        """Have `unit` written in the writer's next transaction; its answer once that committed.
        Raises what the unit raised (a refusal, a bug) or StoreUnavailable."""
        answer: _Answer[R] = _Answer()
        handed = _Unit(kind, unit, answer)
        self._queue.append(handed)
        if self._thread is None or self._closed:
            self._start_or_refuse(handed)
        self._wake.set()
        return answer.result()

    def _start_or_refuse(self, handed: _Unit[Any]) -> None:
        with self._lock:
            if self._stopped:  # closed, and the writer is gone: nobody would write it
                self._queue.remove(handed)
                raise StoreUnavailable("payment store unavailable: its writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def run(self, work: Callable[[Connection], R]) -> R:
        """Have `work` (a function of the connection, written as `Kind.one` asks) run in the
        writer's next transaction; its value once that committed."""
        single: _Single[R] = _SINGLE
        return self.write(single, work)

    @property
    def waiting(self) -> int:
        """Units handed over and not yet taken into a batch."""
        return len(self._queue)

    def close(self, timeout_s: float = 30.0) -> None:
        """Commit what was handed over, then stop the thread. Later writes are refused."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is None:
                self._stopped = True
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch: list[_Unit[Any]] = []
                while self._queue and len(batch) < self._max_batch:
                    batch.append(self._queue.popleft())
                self._commit_guarded(batch)
            if self._closed:
                with self._lock:
                    if not self._queue:  # everything handed over is written
                        self._stopped = True
                        return

    def _commit_guarded(self, batch: list[_Unit[Any]]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            logger.exception("the store writer failed a batch")
            for unit in batch:
                if not unit.future.done():
                    unit.future.set_exception(_copy(exc))

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        self.counts.transactions += 1
        self.counts.units += len(batch)
        try:
            with unavailable_as_retryable(), self._transaction() as connection:
                answers = _bulk(connection, batch)
        except Exception as exc:
            self.counts.rolled_back += 1
            refused = isinstance(exc, StoreUnavailable) and not _retry_singly(exc)
            if len(batch) == 1 and refused:  # it was alone: that was its answer
                batch[0].future.set_exception(exc)
            elif _unanswered(exc):
                for unit in batch:
                    unit.future.set_exception(_copy(exc))
            else:
                self._singly(batch)
            return
        for unit, answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                unit.future.set_exception(answer)
            else:
                unit.future.set_result(answer)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction; on SQLite, with the host's write lock held (store/writelock.py)."""
        with contextlib.ExitStack() as stack:
            if self._host_lock is not None:
                stack.enter_context(self._host_lock.held())
            yield stack.enter_context(self._engine.begin())

    def _singly(self, batch: list[_Unit[Any]]) -> None:
        """After a rolled-back batch: each unit in its own transaction, so the one at fault
        fails alone. If the store stops answering meanwhile, the rest fail with it."""
        for index, unit in enumerate(batch):
            self.counts.transactions += 1
            try:
                with unavailable_as_retryable(), self._transaction() as connection:
                    value = unit.kind.one(connection, unit.data)
            except REFUSALS as refusal:
                unit.future.set_exception(refusal)
                continue
            except Exception as exc:
                unit.future.set_exception(exc)
                if _unanswered(exc):
                    for rest in batch[index + 1 :]:
                        rest.future.set_exception(_copy(exc))
                    return
                continue
            unit.future.set_result(value)


def _bulk(connection: Connection, batch: list[_Unit[Any]]) -> list[Any]:
    """Each kind's units of the batch written together, kinds in the order they first came;
    the answers in the batch's order."""
    by_kind: dict[int, list[int]] = {}
    for index, unit in enumerate(batch):
        by_kind.setdefault(id(unit.kind), []).append(index)
    answers: list[Any] = [None] * len(batch)
    for indexes in by_kind.values():
        kind = batch[indexes[0]].kind
        written = kind.bulk(connection, [batch[index].data for index in indexes])
        for index, answer in zip(indexes, written, strict=True):
            answers[index] = answer
    return answers


def _pool_timeout_s(engine: Engine) -> float:
    """The engine's bound on a wait for the database (store/database.py sets the pool's)."""
    timeout = getattr(engine.pool, "timeout", None)
    return float(timeout()) if callable(timeout) else 10.0


def _unanswered(exc: BaseException) -> bool:
    """The database does not answer (as opposed to refusing one statement)."""
    if not isinstance(exc, StoreUnavailable):
        return False
    cause = exc.__cause__
    return isinstance(cause, OperationalError | InterfaceError | PoolTimeout) and not (
        _retry_singly(exc)
    )


def _retry_singly(exc: BaseException) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(getattr(cause, "orig", None), "sqlstate", None)
    return sqlstate in _RETRY_SINGLY


def _copy(exc: BaseException) -> BaseException:
    """Each waiting caller raises an exception of its own (one raised in many threads at once
    would collect all their tracebacks), the cause kept."""
    if isinstance(exc, StoreUnavailable):
        copy: BaseException = StoreUnavailable(str(exc))
    else:
        copy = StoreUnavailable(f"payment store unavailable: {type(exc).__name__}: {exc}")
    copy.__cause__ = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
    return copy


class WriterCounters(Collector):
    """The writer's counts for Prometheus: transactions per payment is the figure to watch
    (paymq bench prints it)."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def collect(self) -> Iterable[Metric]:
        counts = self._writer.counts
        transactions = CounterMetricFamily(
            "paymq_store_transactions",
            "Transactions the store writer committed or tried (batches, and single retries).",
        )
        transactions.add_metric([], counts.transactions)
        units = CounterMetricFamily(
            "paymq_store_writes", "Writes handed to the store writer (claims, outcomes, marks)."
        )
        units.add_metric([], counts.units)
        rolled_back = CounterMetricFamily(
            "paymq_store_batches_rolled_back",
            "Batches rolled back (a write refused or the store unavailable).",
        )
        rolled_back.add_metric([], counts.rolled_back)
        yield transactions
        yield units
        yield rolled_back

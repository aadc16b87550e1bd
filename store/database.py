"""Engines for the store, and the schema migration (`paymq db upgrade`).

SQLite: WAL mode, so readers never wait for the writer; every transaction starts with BEGIN
IMMEDIATE, so two workers racing for a claim serialize on the write lock instead of failing
on upgrade from read to write; synchronous=NORMAL, which survives any process crash (SIGKILL
included) and loses at most the last commits on power loss, where a redelivery finds the
provider's record under the same idempotency key.
PostgreSQL: a small pool per process, connections checked before use.

Every call is bounded (`StoreTimeouts`): a stalled database, a locked file or a silent network
link makes each step of a call (a pooled connection's check, a new connection, the statement)
fail within `timeout_s` (`connect_s` for a connection), as StoreUnavailable, instead of
holding a payment's thread (and its delivery) for as long as the fault lasts. On PostgreSQL
that takes statement_timeout and lock_timeout for a database that does not answer, and TCP
keepalives and tcp_user_timeout for a link that carries nothing (the kernel's own: ~15 min).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import OperationalError

from common.errors import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from common.settings.store import StoreSettings

_MIGRATIONS = str(Path(__file__).resolve().parent / "migrations")
#: Serializes concurrent upgrades from several processes on PostgreSQL.
_PG_LOCK_KEY = 0x7061796D71  # "paymq"


@dataclass(frozen=True)
class StoreTimeouts:
    connect_s: float = 5.0
    #: The longest one call may wait: for the database, a lock, the link, a pooled connection.
    timeout_s: float = 10.0

    @classmethod
    def of(cls, store: StoreSettings) -> StoreTimeouts:
        return cls(store.database_connect_timeout_s, store.database_timeout_s)

    def postgres_connect_args(self) -> dict[str, Any]:
        timeout_ms = int(self.timeout_s * 1000)
        return {
            "connect_timeout": max(2, round(self.connect_s)),  # libpq: whole seconds, >= 2
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            # A link that carries nothing: probes after half the timeout, three misses in the
            # other half; unacknowledged data gives up after the timeout.
            "keepalives": 1,
            "keepalives_idle": max(1, int(self.timeout_s / 2)),
            "keepalives_interval": max(1, int(self.timeout_s / 6)),
            "keepalives_count": 3,
            "tcp_user_timeout": timeout_ms,
        }


def engine_for(store: StoreSettings, *, pool_size: int = 8) -> Engine:
    """The store engine a process's settings ask for."""
    return create_store_engine(
        store.database_url.get_secret_value(),
        pool_size=pool_size,
        timeouts=StoreTimeouts.of(store),
    )


def create_store_engine(
    url: str, *, pool_size: int = 8, timeouts: StoreTimeouts | None = None
) -> Engine:
    timeouts = timeouts or StoreTimeouts()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, timeouts)
    # Arguments in the URL's query (?connect_timeout=2) win over ours.
    connect_args = {
        k: v for k, v in timeouts.postgres_connect_args().items() if k not in parsed.query
    }
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeouts.timeout_s,
        connect_args=connect_args,
    )


def _sqlite_engine(url: str, database: str | None, timeouts: StoreTimeouts) -> Engine:
    if database and database != ":memory:":
        where = f"cannot open the payment store at {_shown(make_url(url))}"
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"{where}: cannot create directory {folder}: {exc.strerror}"
            ) from exc
        # The store holds payment results (references, amounts): owner-only from the start.
        # SQLite creates the -wal and -shm files with the database file's mode.
        try:
            os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreUnavailable(f"{where}: {exc.strerror}") from exc
    # SQLite has one writer at a time. With one connection per process, threads queue for it
    # in the pool (cheap) instead of in SQLite's busy handler (sleep and retry): paymq bench
    # measured 528 payments/s against 445 with a pool of 5 + 10, and less CPU per payment.
    # A write lock held elsewhere past the timeout fails the call (database is locked), and
    # so does a wait for the one connection behind threads stuck on that lock.
    engine = create_engine(
        url,
        connect_args={"timeout": timeouts.timeout_s, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
        pool_timeout=timeouts.timeout_s,
    )
    busy_timeout_ms = int(timeouts.timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A write takes the write lock as it begins, or it could read a state that another
        # writer changes before it upgrades, and fail at once (SQLITE_BUSY, no busy wait). A
        # read (`reading`) takes no lock: in WAL mode it sees the last commit and waits for
        # nobody, instead of queueing behind every writer, and no writer queues behind it.
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


_READ_ONLY = "paymq_read_only"


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On SQLite its transactions take no write lock (see
    `_sqlite_engine`); elsewhere it is any connection. Writing through it is a mistake."""
    with engine.connect() as connection:
        connection.execution_options(**{_READ_ONLY: True})
        yield connection


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise ConfigurationError("no schema migrations found")
    return head


def _known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(_alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def _refuse_newer(url: URL, current: str | None) -> None:
    """A store migrated by a newer paymq (a revision this one has no migration for) is not
    this paymq's to write: alembic would fail on it with a traceback, and `db upgrade` is no
    answer to it."""
    if current is not None and current not in _known_revisions():
        raise ConfigurationError(
            f"the payment store at {_shown(url)} is at schema {current}, which this paymq "
            f"does not know (its newest is {head_revision()}): a newer paymq migrated it; "
            "run that version or a later one against it"
        )


@contextlib.contextmanager
def _answering(engine: Engine) -> Iterator[None]:
    """A store that does not answer (down, refused, locked, a file that will not open) is
    StoreUnavailable, naming the store, its password hidden, with the driver's reason."""
    try:
        yield
    except OperationalError as exc:
        lines = str(exc.orig).strip().splitlines()
        reason = lines[0] if lines else type(exc.orig).__name__
        raise StoreUnavailable(
            f"the payment store at {_shown(engine.url)} does not answer: {reason}"
        ) from exc


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def current_revision(engine: Engine) -> str | None:
    with _answering(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    """One upgrade at a time, whichever process runs it."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with engine.connect() as connection, _unbounded(connection):
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


@contextlib.contextmanager
def _unbounded(connection: Any) -> Iterator[None]:
    """A migration may take longer than a payment's statement, and a process waits for
    another's migration: no statement or lock timeout while migrating (PostgreSQL). SET LOCAL
    ends with the connection's transaction, so the pooled connection keeps its bounds."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SET LOCAL lock_timeout = 0"))
    yield


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Create or migrate the schema to the newest revision (or to `revision`: tests of a
    migration start from the one before); safe to run concurrently."""
    with (
        _answering(engine),
        _upgrade_lock(engine),
        engine.begin() as connection,
        _unbounded(connection),
    ):
        _refuse_newer(engine.url, MigrationContext.configure(connection).get_current_revision())
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return head_revision() if revision == "head" else revision


def require_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    _refuse_newer(engine.url, current)
    if current != head:
        raise ConfigurationError(
            f"the payment store at {engine.url.render_as_string(hide_password=True)} is at "
            f"schema {current or 'none'}, this paymq needs {head}: run `paymq db upgrade`"
        )

"""An online copy of a SQLite payment store (`paymq db backup`), taken while workers write.

The copy is made by SQLite's backup API in one step: one read transaction, so a snapshot of the
last commit, consistent across tables. In WAL mode a reader neither waits for the writer nor
holds it back, so workers go on recording payments meanwhile. (In steps, as the sqlite3 shell's
`.backup` copies 100 pages at a time, a backup starts over whenever another connection commits
between two steps, and on a busy store may not finish.)

The copy is written beside its target under a temporary name, switched to a rollback journal
(one self-contained file, no -wal or -shm beside it), checked (integrity, schema revision), synced
to disk and only then linked into place: the target holds a whole, checked backup or nothing,
and an existing file is never overwritten (FileExistsError).

PostgreSQL has tools of its own for this (pg_dump, base backups with WAL archiving).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from common.errors import ConfigurationError, StoreUnavailable


@dataclass(frozen=True)
class Backup:
    """What a backup holds, as checked after it was written."""

    path: Path
    revision: str
    payments: int
    size_bytes: int


def backup_sqlite(store_url: str, target: Path, *, timeout_s: float) -> Backup:
    """Copy the SQLite store at `store_url` to `target`, a new file. A write lock held elsewhere
    delays nothing here; a store that does not answer within `timeout_s` is StoreUnavailable."""
    source = _source_path(store_url)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    # The copy holds what the store holds: owner-only from the start, as the store is.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with _answering(source):
            _copy(source, partial, timeout_s)
            revision, payments = _check(partial, source)
        _sync(partial)
        os.link(partial, target)  # never over an existing file, unlike a rename
    finally:
        partial.unlink(missing_ok=True)
    _sync(target.parent)
    return Backup(target, revision, payments, target.stat().st_size)


def _source_path(store_url: str) -> Path:
    url = make_url(store_url)
    if url.get_backend_name() != "sqlite":
        raise ConfigurationError(
            f"the payment store is {url.get_backend_name()}, not SQLite: `paymq db backup` copies "
            "a SQLite file; back PostgreSQL up with pg_dump or its base backups and WAL "
            "archiving (docs/operations.md)"
        )
    if not url.database or url.database == ":memory:":
        raise ConfigurationError("the payment store is in memory: there is no file to back up")
    path = Path(url.database)
    if not path.is_file():
        # Connecting would create an empty store, and back that up.
        raise ConfigurationError(f"there is no payment store at {path} (PAYMQ_DATABASE_URL)")
    return path


def _copy(source: Path, partial: Path, timeout_s: float) -> None:
    with (
        contextlib.closing(sqlite3.connect(source, timeout=timeout_s)) as reader,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        reader.backup(copy)  # every page in one step: one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")


def _check(partial: Path, source: Path) -> tuple[str, int]:
    """The copy is a sound paymq store: SQLite's integrity check, and a schema revision."""
    with contextlib.closing(sqlite3.connect(partial)) as copy:
        [(verdict,)] = copy.execute("PRAGMA integrity_check(1)").fetchall()
        if verdict != "ok":
            raise ConfigurationError(
                f"the copy of {source} fails SQLite's integrity check ({verdict}): the store "
                "itself may be damaged"
            )
        try:
            [(revision,)] = copy.execute("SELECT version_num FROM alembic_version").fetchall()
            [(payments,)] = copy.execute("SELECT count(*) FROM payments").fetchall()
        except (sqlite3.OperationalError, ValueError):  # no such table; no revision row
            raise ConfigurationError(
                f"{source} holds no paymq schema: is PAYMQ_DATABASE_URL the payment store?"
            ) from None
    return str(revision), int(payments)


@contextlib.contextmanager
def _answering(source: Path) -> Iterator[None]:
    """SQLite's failures as the store's: locked past the timeout, or not a database."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"the payment store at {source} does not answer: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise ConfigurationError(f"{source} is not a SQLite database: {exc}") from exc


def _sync(path: Path) -> None:
    """A file's (or a directory's entries') writes on disk: a backup that a power loss could
    take back is not one."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

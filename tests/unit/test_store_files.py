"""The SQLite store's files are owner-only: the database and the WAL and shared-memory files
SQLite makes beside it."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from store.database import create_store_engine


def test_a_new_sqlite_store_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "store" / "paymq.db"
    engine = create_store_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        files = [database, database.with_name("paymq.db-wal"), database.with_name("paymq.db-shm")]
        assert all(path.exists() for path in files)
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        engine.dispose()

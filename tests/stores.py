"""Payment stores for tests: SQLite in a temporary directory, and a throwaway PostgreSQL database
when one answers (PAYMQ_TEST_POSTGRES_URL, default the local server); CI must have both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from store.database import create_store_engine, upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "PAYMQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def sqlite_engine(directory: Path, revision: str = "head") -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{directory / 'paymq.db'}")
    try:
        upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_engine(revision: str = "head") -> Iterator[Engine]:
    """A fresh database on the PostgreSQL server, migrated to `revision`, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"paymq_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and PostgreSQL does not answer: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL}")
    url = admin.url.set(database=name)
    engine = create_store_engine(url.render_as_string(hide_password=False))
    try:
        upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

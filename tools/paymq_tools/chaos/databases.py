"""A throwaway PostgreSQL database per scenario, for runs on a shared store server instead of
a SQLite file: created on the server at `admin_url`, dropped when the scenario ends (kept with
--keep)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from paymq_tools.errors import ToolError


class DatabaseSetupFailed(ToolError):
    code = "database_setup_failed"


def create_database(admin_url: str, prefix: str = "paymq_chaos", *, name: str | None = None) -> str:
    """Create an empty database next to `admin_url`'s (named `name`, or the prefix and a random
    suffix); its URL (password kept)."""
    name = name or f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        raise DatabaseSetupFailed(f"cannot create a database at {_safe(admin_url)}: {exc}") from exc
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)

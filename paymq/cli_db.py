"""`paymq db`: the payment store's schema, and online backups of a SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymq.clikit import CommandFailed, UsageError, friendly, load_settings

db_app = typer.Typer(help="The payment store: its schema, and backups.", no_args_is_help=True)


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create the payment store's schema, or migrate it to this version (idempotent)."""
    from store.database import engine_for, upgrade

    settings = load_settings()
    engine = engine_for(settings.store)
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    typer.echo(f"{engine.url.render_as_string(hide_password=True)} is at schema {revision}")


@db_app.command("current")
@friendly
def db_current() -> None:
    """Print the store's schema revision, and the one this paymq needs."""
    from store.database import current_revision, engine_for, head_revision

    engine = engine_for(load_settings().store)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"store: {current or 'none'}, needed: {head_revision()}")


@db_app.command("backup")
@friendly
def db_backup(
    target: Annotated[
        Path, typer.Argument(help="The backup file to create; an existing one is never replaced.")
    ],
) -> None:
    """Copy a SQLite store to a new file while workers keep writing: one consistent snapshot,
    checked, as one self-contained file (PostgreSQL: pg_dump; docs/operations.md)."""
    from store.backup import backup_sqlite

    settings = load_settings()
    if target.is_dir():
        raise UsageError(f"{target} is a directory: name the backup file to create in it")
    try:
        done = backup_sqlite(
            settings.store.database_url.get_secret_value(),
            target,
            timeout_s=settings.store.database_timeout_s,
        )
    except FileExistsError:
        raise UsageError(
            f"{target} exists: name a new file (a backup never replaces one)"
        ) from None
    except OSError as exc:
        raise CommandFailed(f"cannot write the backup {target}: {exc.strerror}") from exc
    payments = "1 payment" if done.payments == 1 else f"{done.payments} payments"
    typer.echo(
        f"backed up the payment store to {done.path}: schema {done.revision}, {payments}, "
        f"{done.size_bytes} bytes"
    )

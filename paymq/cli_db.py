"""`paymq db`: the payment store's schema."""

from __future__ import annotations

import typer

from paymq.clikit import friendly, load_settings

db_app = typer.Typer(help="The payment store's schema.", no_args_is_help=True)


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

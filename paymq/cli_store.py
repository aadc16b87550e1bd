"""The payment store's commands: `paymq reconcile`, `paymq status`, `paymq db`, `paymq dlq`."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq import logs
from paymq.clikit import err, friendly, load_settings

db_app = typer.Typer(help="The payment store's schema.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Inspect the dead-letter queue and replay messages.", no_args_is_help=True
)


@friendly
def reconcile() -> None:
    """Settle pending and in-doubt payments by asking the provider, until SIGTERM/SIGINT
    (workers also do this unless PAYMQ_WORKER_RECONCILES=false)."""
    from workers.main import run_reconciler

    settings = load_settings()
    logs.configure_process(settings, "paymq-reconciler")
    run_reconciler(settings)


@friendly
def status(
    payment_id: Annotated[str, typer.Argument(help="The payment id (UUID).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """A payment's state and history: attempts, provider references, result (masked)."""
    from paymq.status import show_status

    raise typer.Exit(show_status(load_settings(), payment_id, as_json=as_json))


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create the payment store's schema, or migrate it to this version (idempotent)."""
    from store.database import engine_for, upgrade

    settings = load_settings()
    engine = engine_for(settings.store)
    revision = upgrade(engine)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)} is at schema {revision}")


@db_app.command("current")
@friendly
def db_current() -> None:
    """Print the store's schema revision, and the one this paymq needs."""
    from store.database import current_revision, engine_for, head_revision

    engine = engine_for(load_settings().store)
    typer.echo(f"store: {current_revision(engine) or 'none'}, needed: {head_revision()}")


@dlq_app.command("list")
@friendly
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every message in the dead-letter queue with why it is there (the queue is unchanged)."""
    from paymq.dlq import list_dead_letters

    raise typer.Exit(list_dead_letters(load_settings(), as_json=as_json))


@dlq_app.command("show")
@friendly
def dlq_show(message_id: str) -> None:
    """One dead-lettered message: headers, reason and body (card numbers masked)."""
    from paymq.dlq import show_dead_letter

    raise typer.Exit(show_dead_letter(load_settings(), message_id))


@dlq_app.command("replay")
@friendly
def dlq_replay(
    message_ids: Annotated[list[str] | None, typer.Argument(help="Message ids to replay.")] = None,
    code: Annotated[str | None, typer.Option(help="Replay every message with this code.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay everything.")] = False,
) -> None:
    """Republish chosen messages, exactly as signed; a payment with a result only has it
    repeated."""
    from paymq.dlq import Selection, replay_dead_letters

    if not (message_ids or code or replay_all):
        err.print("name message ids, --code CODE or --all")
        raise typer.Exit(2)
    selection = Selection(frozenset(message_ids or ()), code, replay_all)
    raise typer.Exit(replay_dead_letters(load_settings(), selection))

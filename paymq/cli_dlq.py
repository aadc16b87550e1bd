"""`paymq dlq`: inspect the dead-letter queue and replay messages."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq.clikit import err, friendly, load_settings

dlq_app = typer.Typer(
    help="Inspect the dead-letter queue and replay messages.", no_args_is_help=True
)


@dlq_app.command("list")
@friendly
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every message in the dead-letter queue with why it is there. Looking spends none of a
    message's deliveries: each is put back as an identical copy (docs/protocol.md)."""
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

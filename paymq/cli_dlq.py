"""`paymq dlq`: inspect the dead-letter queue, replay messages or discard them."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from paymq.clikit import UsageError, err, friendly, load_settings

dlq_app = typer.Typer(
    help="Inspect the dead-letter queue, replay messages or discard them.", no_args_is_help=True
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


@dlq_app.command("discard")
@friendly
def dlq_discard(
    reason: Annotated[
        str, typer.Option(help="Why they are discarded (required): kept with each record.")
    ],
    message_ids: Annotated[list[str] | None, typer.Argument(help="Message ids to discard.")] = None,
    code: Annotated[str | None, typer.Option(help="Discard every message with this code.")] = None,
    discard_all: Annotated[bool, typer.Option("--all", help="Discard everything.")] = False,
    by: Annotated[
        str | None, typer.Option(help="Who discards, for the record. Default: the OS user.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove chosen messages for good, without replaying them. Each one's audit record (who,
    when, why, and the message itself) is committed to the payment store before the message
    leaves the queue; `paymq dlq discarded` lists the records."""
    from common.clock import SystemClock
    from paymq.discard import Discarding, discard_dead_letters
    from paymq.dlq import Selection

    if not (message_ids or code or discard_all):
        err.print("name message ids, --code CODE or --all")
        raise typer.Exit(2)
    discarding = Discarding(reason, by if by is not None else _os_user())
    selection = Selection(frozenset(message_ids or ()), code, discard_all)
    raise typer.Exit(
        discard_dead_letters(
            load_settings(),
            selection,
            discarding,
            confirm=(lambda _question: True) if yes else _ask,
            clock=SystemClock(),
        )
    )


@dlq_app.command("discarded")
@friendly
def dlq_discarded(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The audit records of discarded dead letters: when, by whom, which message and why."""
    from paymq.discard import list_discards

    raise typer.Exit(list_discards(load_settings(), limit=limit, as_json=as_json))


def _os_user() -> str:
    """The operator's login name, for a discard's record when --by is not given."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password database
        raise UsageError("cannot tell who you are: name yourself with --by NAME") from None


def _ask(question: str) -> bool:
    return typer.confirm(question, default=False)

"""`paymq results`: watch signed result events."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq.clikit import friendly, load_settings

results_app = typer.Typer(help="Watch signed result events.", no_args_is_help=True)


@results_app.command("tail")
@friendly
def results_tail(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    durable: Annotated[
        bool, typer.Option(help="Consume the durable notifications queue instead of a copy.")
    ] = False,
    count: Annotated[int, typer.Option(help="Stop after this many events (0: never).")] = 0,
    timeout_s: Annotated[float, typer.Option(help="Stop after this long quiet (0: never).")] = 0,
) -> None:
    """Print result events as they arrive, verified against the keyring."""
    from paymq.tail import tail

    raise typer.Exit(
        tail(
            load_settings(),
            as_json=as_json,
            durable=durable,
            count=count,
            quiet_timeout_s=timeout_s,
        )
    )

"""`paymq chain`: the Ethereum hot wallet (docs/ethereum.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq.clikit import friendly, load_settings

chain_app = typer.Typer(help="The Ethereum hot wallet (docs/ethereum.md).", no_args_is_help=True)


@chain_app.command("status")
@friendly
def chain_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The hot wallet: balance, nonces, and the signed transactions not mined yet."""
    from paymq.chainstatus import show, wallet_status

    show(wallet_status(load_settings()), as_json=as_json)

"""`paymq topology`: the broker's exchanges and queues."""

from __future__ import annotations

from typing import Annotated

import typer

from paymq.clikit import err, friendly, load_settings

topology_app = typer.Typer(help="Declare or delete the exchanges and queues.", no_args_is_help=True)


@topology_app.command("declare")
@friendly
def topology_declare() -> None:
    """Declare every exchange, queue and binding (idempotent)."""
    from common.amqp.admin import BrokerAdmin

    settings = load_settings()
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.declare(settings.topology())
    typer.echo(f"declared topology {settings.topology_prefix!r}")


@topology_app.command("delete")
@friendly
def topology_delete(
    yes: Annotated[bool, typer.Option("--yes", help="Really delete queues and messages.")] = False,
) -> None:
    """Delete every exchange and queue of the prefix, with their messages."""
    from common.amqp.admin import BrokerAdmin

    settings = load_settings()
    if not yes:
        err.print("refusing without --yes: this deletes queued payments")
        raise typer.Exit(1)
    with BrokerAdmin(settings.amqp_url) as admin:
        admin.delete(settings.topology())
    typer.echo(f"deleted topology {settings.topology_prefix!r}")


@topology_app.command("show")
@friendly
def topology_show() -> None:
    """Print the names and arguments of every exchange, queue and binding."""
    topology = load_settings().topology()
    for exchange in topology.exchanges():
        typer.echo(f"exchange {exchange.name} ({exchange.type})")
    for queue in topology.queues():
        typer.echo(f"queue    {queue.name} {queue.arguments}")
    for binding in topology.bindings():
        typer.echo(f"binding  {binding.exchange} -[{binding.routing_key}]-> {binding.queue}")

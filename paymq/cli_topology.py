"""`paymq topology`: the broker's exchanges and queues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from paymq.clikit import err, friendly, load_settings

if TYPE_CHECKING:
    from common.settings import Settings

topology_app = typer.Typer(
    help="Declare, inspect or delete the exchanges and queues.", no_args_is_help=True
)


@topology_app.command("declare")
@friendly
def topology_declare() -> None:
    """Declare every exchange, queue and binding (idempotent)."""
    from common.amqp.admin import BrokerAdmin

    settings = load_settings()
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        kept = admin.declare(settings.broker.topology())
    typer.echo(f"declared topology {settings.broker.topology_prefix!r}")
    for message in kept:
        err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)
    shortfall = _replication_shortfall(settings)
    if shortfall is not None:
        err.print(f"[yellow]warning:[/yellow] {shortfall}", highlight=False)


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
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        admin.delete(settings.broker.topology())
    typer.echo(f"deleted topology {settings.broker.topology_prefix!r}")


@topology_app.command("show")
@friendly
def topology_show() -> None:
    """Print the names and arguments of every exchange, queue and binding."""
    topology = load_settings().broker.topology()
    for exchange in topology.exchanges():
        typer.echo(f"exchange {exchange.name} ({exchange.type})")
    for queue in topology.queues():
        typer.echo(f"queue    {queue.name} {queue.arguments}")
    for binding in topology.bindings():
        typer.echo(f"binding  {binding.exchange} -[{binding.routing_key}]-> {binding.queue}")


@topology_app.command("status")
@friendly
def topology_status() -> None:
    """Each queue's leader, members and members online (from the management API), and the
    cluster's nodes. Exits 1 when a queue is missing, has no leader or has lost its quorum."""
    from common.amqp.management import (
        ManagementApi,
        management_urls,
        replication_shortfall,
        vhost_of,
        wanted_members,
    )

    settings = load_settings()
    topology = settings.broker.topology()
    with ManagementApi(
        management_urls(settings.broker.amqp_url, settings.broker.management_url)
    ) as api:
        nodes = api.nodes()
        found = {q.name: q for q in api.queues(vhost_of(settings.broker.amqp_url), topology.prefix)}
    running = [node.name for node in nodes if node.running]
    down = [node.name for node in nodes if not node.running]
    typer.echo(
        f"cluster: {len(nodes)} node{'s' if len(nodes) != 1 else ''}, {len(running)} running"
        + (f"; down: {', '.join(down)}" if down else "")
    )
    wanted = wanted_members(settings.broker.quorum_replicas, len(nodes))
    source = "PAYMQ_QUORUM_REPLICAS" if settings.broker.quorum_replicas else "RabbitMQ's default"
    typer.echo(f"members per queue: {wanted} ({source})")
    shortfall = replication_shortfall(settings.broker.quorum_replicas, nodes)
    if shortfall is not None:
        err.print(f"[yellow]warning:[/yellow] {shortfall}", highlight=False)
    names = [q.name for q in topology.queues()]
    if topology.webhooks_queue in found:  # declared only where webhooks run
        names.append(topology.webhooks_queue)
    width = max(len(name) for name in names)
    lead = max([len("leader"), *(len(q.leader or "-") for q in found.values())])
    typer.echo(f"{'queue':{width}}  {'leader':{lead}}  online  state")
    failing = False
    for name in names:
        queue = found.get(name)
        if queue is None:
            failing = True
            typer.echo(
                f"{name:{width}}  {'-':{lead}}  {'-':6}  missing: run paymq topology declare"
            )
            continue
        problems = queue.problems(wanted)
        failing = failing or queue.at_risk
        online = f"{len(queue.online)}/{len(queue.members)}"
        state = "; ".join(problems) or "ok"
        typer.echo(f"{name:{width}}  {queue.leader or '-':{lead}}  {online:6}  {state}")
    if failing:
        raise typer.Exit(1)


def _replication_shortfall(settings: Settings) -> str | None:
    """The warning for a cluster smaller than the replicas asked for; None when it is not, or
    when no management API answers to tell."""
    from common.amqp.management import (
        ManagementApi,
        ManagementUnavailable,
        management_urls,
        replication_shortfall,
    )

    if settings.broker.quorum_replicas is None:
        return None
    try:
        with ManagementApi(
            management_urls(settings.broker.amqp_url, settings.broker.management_url)
        ) as api:
            nodes = api.nodes()
    except ManagementUnavailable:
        return None
    return replication_shortfall(settings.broker.quorum_replicas, nodes)

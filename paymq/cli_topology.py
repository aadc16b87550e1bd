"""`paymq topology`: the broker's exchanges and queues."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from common.errors import ConfigurationError
from paymq.clikit import err, friendly, load_settings

if TYPE_CHECKING:
    from common.settings import Settings

topology_app = typer.Typer(
    help="Declare, inspect or delete the exchanges and queues, and define the broker users "
    "that may use them.",
    no_args_is_help=True,
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


@topology_app.command("users")
@friendly
def topology_users(
    passwords_dir: Annotated[
        Path,
        typer.Option(
            help="One file per user holding its password; a missing one is made here (random, "
            "mode 0600)."
        ),
    ],
    vhost: Annotated[
        str | None, typer.Option(help="Virtual host. Default: the one PAYMQ_AMQP_URL names.")
    ] = None,
) -> None:
    """Print a RabbitMQ definitions document (JSON) that creates the virtual host and one
    broker user per role, each allowed only its duty (docs/docker.md, Broker users). Import
    it with `rabbitmqctl import_definitions FILE` or the management UI. It holds the
    passwords' salted hashes only; each service gets its password from PASSWORDS_DIR/<user>."""
    from common.amqp.management import vhost_of
    from common.amqp.permissions import SALT_BYTES, broker_roles, definitions, password_hash

    settings = load_settings()
    topology = settings.broker.topology()
    users = [role.user(topology) for role in broker_roles(topology)]
    hashes = {
        user: password_hash(_password(passwords_dir / user), os.urandom(SALT_BYTES))
        for user in users
    }
    document = definitions(topology, vhost or vhost_of(settings.broker.amqp_url), hashes)
    typer.echo(json.dumps(document, indent=2))
    err.print(f"{len(users)} users; their passwords are in {passwords_dir}", highlight=False)


def _password(path: Path) -> str:
    """The password in `path`; a new random one written there (0600) if there is no file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # Created owner-only from the start: never a moment where another user can read it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text(encoding="utf-8").strip()
        if not password:
            raise ConfigurationError(
                f"{path} is empty: write the user's password in it, or remove it"
            ) from None
        return password
    password = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password


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

"""`paymq webhooks`: register endpoints, run the sender, and see or repeat deliveries
(docs/webhooks.md)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from common.errors import ConfigurationError
from paymq import logs
from paymq.clikit import err, friendly, load_settings

if TYPE_CHECKING:
    from common.settings import Settings
    from webhooks.deliveries import WebhookDeliveries

webhooks_app = typer.Typer(
    help="Deliver result events to HTTP endpoints, signed (docs/webhooks.md).",
    no_args_is_help=True,
)


@webhooks_app.command("add")
@friendly
def webhooks_add(
    url: Annotated[str, typer.Argument(help="http:// or https:// URL that receives POSTs.")],
    endpoint_id: Annotated[
        str | None, typer.Option("--id", help="The endpoint's name (default: a random one).")
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option(help="Only results of this channel; repeat for more.")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only results with this status; repeat for more.")
    ] = None,
) -> None:
    """Register an endpoint. Its signing secret is printed once; keep it with the receiver."""
    from webhooks.endpoints import add_endpoint

    settings = load_settings()
    path = settings.webhook_endpoints_path
    endpoint = add_endpoint(
        path,
        url,
        endpoint_id=endpoint_id,
        channels=channel or (),
        statuses=status or (),
        allow_private_networks=settings.webhooks.webhook_allow_private_networks,
    )
    typer.echo(f"webhook endpoint {endpoint.id} -> {endpoint.url}, kept in {path}")
    typer.echo("its signing secret (shown only now):")
    typer.echo(endpoint.secret)


@webhooks_app.command("list")
@friendly
def webhooks_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """List the endpoints and their filters (never their secrets)."""
    from webhooks.endpoints import Endpoints

    endpoints = Endpoints.load(load_settings().webhook_endpoints_path).endpoints
    if as_json:
        typer.echo(json.dumps({"endpoints": [e.public() for e in endpoints]}))
        return
    if not endpoints:
        typer.echo("no webhook endpoints: paymq webhooks add URL")
    for e in endpoints:
        channels = ",".join(e.channels) or "all channels"
        statuses = ",".join(e.statuses) or "all statuses"
        typer.echo(f"{e.id:20} {e.url}  ({channels}; {statuses})")


@webhooks_app.command("remove")
@friendly
def webhooks_remove(endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")]) -> None:
    """Remove an endpoint; its pending deliveries are given up."""
    from webhooks.endpoints import remove_endpoint

    remove_endpoint(load_settings().webhook_endpoints_path, endpoint_id)
    typer.echo(f"removed webhook endpoint {endpoint_id}")


@webhooks_app.command("run")
@friendly
def webhooks_run() -> None:
    """Consume result events and deliver them until SIGTERM/SIGINT (finishes in-flight POSTs)."""
    from webhooks.service import run_webhooks

    settings = load_settings()
    logs.configure_process(settings, "paymq-webhooks")
    run_webhooks(settings)


@webhooks_app.command("status")
@friendly
def webhooks_status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    failures: Annotated[int, typer.Option(help="How many recent failures to show.")] = 10,
) -> None:
    """Deliveries by endpoint and state, the oldest pending one, and recent failures."""
    from webhooks.report import delivery_report, render_report

    deliveries = _deliveries(load_settings())
    try:
        report = delivery_report(deliveries, now_ms=time.time_ns() // 1_000_000, failures=failures)
    finally:
        deliveries.engine.dispose()
    typer.echo(json.dumps(report) if as_json else render_report(report))


@webhooks_app.command("redeliver")
@friendly
def webhooks_redeliver(
    event: Annotated[str | None, typer.Option(help="Send this event again.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Send every failed one again.")] = False,
    endpoint: Annotated[str | None, typer.Option(help="Only to this endpoint.")] = None,
) -> None:
    """Put deliveries back to pending with their attempts reset (`paymq webhooks run` sends)."""
    if (event is None) == (not failed):
        err.print("[red]error:[/red] give exactly one of --event EVENT_ID or --failed")
        raise typer.Exit(2)
    deliveries = _deliveries(load_settings())
    try:
        count = deliveries.redeliver(event_id=event, failed=failed, endpoint_id=endpoint)
    finally:
        deliveries.engine.dispose()
    if count == 0:
        raise ConfigurationError("no delivery matches (one being sent right now is left alone)")
    typer.echo(f"{count} deliveries pending again")


def _deliveries(settings: Settings) -> WebhookDeliveries:
    from common.clock import SystemClock
    from store.database import engine_for, require_current
    from webhooks.deliveries import WebhookDeliveries

    engine = engine_for(settings.store, pool_size=1)
    try:
        require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return WebhookDeliveries(engine, SystemClock(), owner="paymq-cli", lease_ms=0)

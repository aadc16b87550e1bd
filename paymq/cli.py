"""`paymq`: the one command. Settings are built here, once, and passed down.

This module holds the app, its single commands (the processes: worker, reconcile, sandbox;
and publish, status, top) and the command groups' registration; each group has a module of its
own (cli_<group>.py). Installed tools add theirs through the `paymq.commands` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from paymq import logs
from paymq.cli_api import api_app
from paymq.cli_chain import chain_app
from paymq.cli_config import config_app
from paymq.cli_db import db_app
from paymq.cli_dlq import dlq_app
from paymq.cli_keys import keys_app
from paymq.cli_results import results_app
from paymq.cli_topology import topology_app
from paymq.cli_webhooks import webhooks_app
from paymq.clikit import UsageError, err, friendly, load_settings

app = typer.Typer(
    name="paymq",
    help="Signed payment requests over RabbitMQ, executed once by per-channel workers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(topology_app, name="topology")
app.add_typer(results_app, name="results")
app.add_typer(config_app, name="config")
app.add_typer(chain_app, name="chain")
app.add_typer(api_app, name="api")
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(webhooks_app, name="webhooks")

__all__ = ["app", "err", "friendly", "load_settings", "main"]

# --- the system --------------------------------------------------------------------------------


@app.command()
@friendly
def worker(
    channel: Annotated[str, typer.Argument(help="card or digital_currency")],
) -> None:
    """Consume and execute payments of one channel until SIGTERM/SIGINT (drains in-flight)."""
    from workers.main import run_worker

    settings = load_settings()
    known = settings.broker.topology().channels
    if channel not in known:  # before anything is declared, opened or logged
        raise UsageError(f"unknown channel {channel!r}; known: {', '.join(known)}")
    logs.configure_process(settings, f"paymq-worker-{channel}")
    run_worker(settings, channel)


@app.command()
@friendly
def reconcile() -> None:
    """Settle pending and in-doubt payments by asking the provider, until SIGTERM/SIGINT
    (workers also do this unless PAYMQ_WORKER_RECONCILES=false)."""
    from workers.main import run_reconciler

    settings = load_settings()
    logs.configure_process(settings, "paymq-reconciler")
    run_reconciler(settings)


@app.command()
@friendly
def status(
    payment: Annotated[
        str | None,
        typer.Argument(
            help="A payment id; failing that, a merchant reference or idempotency key to look up."
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Only by this merchant reference.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Only by this idempotency key (a producer's, or an HTTP caller's "
            "Idempotency-Key).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="At most this many payments, the newest.")
    ] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One JSON document: the payment found by its id, else {"payments": [...], '
            '"has_more": ...}.',
        ),
    ] = False,
) -> None:
    """Payments' state and history: attempts, provider references, result (masked). Found by
    payment id, or by merchant reference or idempotency key (several are listed, newest first)."""
    from paymq.status import Lookup, show_status
    from store.records import LookupBy

    given = [
        (text, by)
        for text, by in (
            (payment, None),
            (reference, {LookupBy.MERCHANT_REFERENCE}),
            (idempotency_key, {LookupBy.IDEMPOTENCY_KEY}),
        )
        if text is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "give one of: a payment id or text to look up, --reference, --idempotency-key"
        )
    [(text, by)] = given
    if not text.strip():
        raise UsageError("the payment id, reference or key to look up is empty")
    lookup = Lookup(text, by=by, limit=limit)
    raise typer.Exit(show_status(load_settings(), lookup, as_json=as_json))


@app.command()
@friendly
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8099,
    latency_ms: Annotated[int, typer.Option(help="Delay added to every provider call.")] = 0,
) -> None:
    """Run the provider sandbox: card charges and payouts over HTTP (docs/sandbox.md)."""
    from sandbox.server import serve

    settings = load_settings()
    logs.configure(settings.observability.log_level, settings.observability.log_format)
    serve(host, port, latency_ms=latency_ms, on_ready=lambda url: typer.echo(f"sandbox on {url}"))


@app.command()
@friendly
def publish(
    file: Annotated[Path | None, typer.Option(help="JSON Lines file of payment orders.")] = None,
    channel: Annotated[str, typer.Option(help="card or digital_currency.")] = "card",
    amount: Annotated[str | None, typer.Option(help="Amount in major units, e.g. 10.50.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code (or ETH/USDC).")] = "USD",
    token: Annotated[str | None, typer.Option(help="Provider card token, e.g. tok_visa.")] = None,
    card: Annotated[
        str | None,
        typer.Option(
            help='Card data, sealed at once: a file holding {"number", "exp_month", '
            '"exp_year", "cvc"} as JSON, or - to read it from standard input (asked for, '
            "unechoed, on a terminal). Never on the command line, where ps shows it."
        ),
    ] = None,
    address: Annotated[str | None, typer.Option(help="Payout destination address.")] = None,
    network: Annotated[str, typer.Option(help="Payout network.")] = "ethereum",
    reference: Annotated[str | None, typer.Option(help="Merchant reference.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Default: the reference.")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line on standard output for each order: whether it was "
            "published, its payment id, reference and idempotency key (the rest goes to "
            "standard error).",
        ),
    ] = False,
) -> None:
    """Publish one payment from options, or many from a JSON Lines file (docs/publishing.md)."""
    from paymq.publishing import OrderOptions, publish_file, publish_one

    settings = load_settings()
    if file is not None:
        code = publish_file(settings, file, as_json=as_json)
    else:
        code = publish_one(
            settings,
            OrderOptions(
                channel=channel,
                amount=amount,
                currency=currency,
                token=token,
                card=card,
                address=address,
                network=network,
                reference=reference,
                idempotency_key=idempotency_key,
            ),
            as_json=as_json,
        )
    raise typer.Exit(code)


@app.command()
@friendly
def top(
    interval_s: Annotated[float, typer.Option(help="Seconds between frames.")] = 1.0,
    once: Annotated[bool, typer.Option(help="Print one frame and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: one JSON object.")] = False,
) -> None:
    """A live view: payments finished per second, queue depths, payments by state, in doubt."""
    from paymq.top import run_top

    run_top(load_settings(), interval_s=interval_s, once=once, as_json=as_json)


def add_tool_commands(target: typer.Typer) -> None:
    """Commands of installed extensions (entry point group `paymq.commands`): paymq's own
    development tools (`paymq demo`, `bench`, `chaos`, ...) register themselves this way, and
    are absent from a production install. An extension that fails to load is named, not fatal:
    the operator commands keep working."""
    for entry in entry_points(group="paymq.commands"):
        try:
            entry.load()(target)
        except Exception as exc:  # any failure of an extension is reported alike
            err.print(f"paymq: the {entry.name!r} commands ({entry.value}) did not load: {exc}")


add_tool_commands(app)


def main() -> None:
    app()

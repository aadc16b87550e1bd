"""`paymq`: the one command. Settings are built here, once, and passed down."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from paymq import logs
from paymq.cli_keys import keys_app
from paymq.cli_store import db_app, dlq_app, reconcile, status
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
results_app = typer.Typer(help="Watch signed result events.", no_args_is_help=True)
config_app = typer.Typer(help="Show the configuration and its documentation.", no_args_is_help=True)
chain_app = typer.Typer(help="The Ethereum hot wallet (docs/ethereum.md).", no_args_is_help=True)
api_app = typer.Typer(help="The HTTP payment API (docs/api.md).", no_args_is_help=True)
api_keys_app = typer.Typer(help="The HTTP API's keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(topology_app, name="topology")
app.add_typer(results_app, name="results")
app.add_typer(config_app, name="config")
app.add_typer(chain_app, name="chain")
app.add_typer(api_app, name="api")
api_app.add_typer(api_keys_app, name="keys")
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


app.command()(reconcile)
app.command()(status)


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
) -> None:
    """Publish one payment from options, or many from a JSON Lines file (see producer/orders.py)."""
    from paymq.publishing import OrderOptions, publish_file, publish_one

    settings = load_settings()
    if file is not None:
        code = publish_file(settings, file)
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
        )
    raise typer.Exit(code)


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


@api_app.command("serve")
@friendly
def api_serve() -> None:
    """Serve the HTTP payment API on PAYMQ_API_HOST:PAYMQ_API_PORT (default 127.0.0.1:8080)."""
    from producer.api.server import serve

    settings = load_settings()
    logs.configure_process(settings, "paymq-api")
    serve(settings)


@api_keys_app.command("add")
@friendly
def api_keys_add(
    key_id: Annotated[str, typer.Argument(help="The caller's name, e.g. shop-eu.")],
    channel: Annotated[
        list[str], typer.Option(help="A channel the key may pay on; repeat for more.")
    ],
) -> None:
    """Create an API key. The secret is printed once; only its SHA-256 is kept."""
    from producer.api.keys import add_key

    settings = load_settings()
    secret = add_key(settings.api_keys_path, key_id, channel)
    typer.echo(f"API key {key_id} ({', '.join(channel)}), kept in {settings.api_keys_path}:")
    typer.echo(secret)


@api_keys_app.command("list")
@friendly
def api_keys_list() -> None:
    """The API keys and the channels each may pay on (never a secret: only digests are kept)."""
    from producer.api.keys import ApiKeys

    settings = load_settings()
    keys = ApiKeys.load(settings.api_keys_path).keys
    if not keys:
        typer.echo(f"no API keys in {settings.api_keys_path}")
    for key in keys:
        typer.echo(f"{key.id:32} {', '.join(key.channels)}")


@api_keys_app.command("remove")
@friendly
def api_keys_remove(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
) -> None:
    """Revoke an API key: a running API refuses its secret from the next request on."""
    from producer.api.keys import remove_key

    settings = load_settings()
    remove_key(settings.api_keys_path, key_id)
    typer.echo(f"API key {key_id} removed from {settings.api_keys_path}")


@api_app.command("openapi")
def api_openapi() -> None:
    """Print the API's OpenAPI document (docs/openapi.json is this, committed)."""
    from producer.api.server import openapi_json

    typer.echo(openapi_json(), nl=False)


@chain_app.command("status")
@friendly
def chain_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The hot wallet: balance, nonces, and the signed transactions not mined yet."""
    from paymq.chainstatus import show, wallet_status

    show(wallet_status(load_settings()), as_json=as_json)


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


@config_app.command("show")
@friendly
def config_show() -> None:
    """Print the effective configuration (secrets redacted: keys, and the password of every
    URL, the store's included)."""
    from pydantic import SecretStr

    from common.amqp.nodes import redact
    from common.settings import SETTINGS

    settings = load_settings()
    dumped = settings.model_dump(mode="json")  # secrets masked
    for setting in SETTINGS:
        value = dumped[setting.section][setting.name]
        secret = settings.value(setting)
        if isinstance(secret, SecretStr) and "://" in secret.get_secret_value():
            value = secret.get_secret_value()  # a URL: where it points is no secret
        shown = redact(value) if isinstance(value, str) and "://" in value else value
        typer.echo(f"{setting.variable}={shown}")


@config_app.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md, generated from the settings class."""
    from paymq.configdoc import render

    sys.stdout.write(render())


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

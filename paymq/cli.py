"""`paymq`: the one command. Settings are built here, once, and passed down."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from common.errors import BrokerUnavailable, PaymqError
from common.settings import Settings
from paymq import logs
from paymq.chaos.cli import chaos_app

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True)

app = typer.Typer(
    name="paymq",
    help="Signed payment requests over RabbitMQ, executed once by per-channel workers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(
    help="Create, list and retire signing and sealing keys.", no_args_is_help=True
)
topology_app = typer.Typer(help="Declare or delete the exchanges and queues.", no_args_is_help=True)
results_app = typer.Typer(help="Watch signed result events.", no_args_is_help=True)
config_app = typer.Typer(help="Show the configuration and its documentation.", no_args_is_help=True)
db_app = typer.Typer(help="The payment store's schema.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Inspect the dead-letter queue and replay messages.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(topology_app, name="topology")
app.add_typer(results_app, name="results")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(chaos_app, name="chaos")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        lines = [
            f"  PAYMQ_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in errors
        ]
        err.print("[red]error:[/red] invalid configuration:\n" + "\n".join(lines))
        raise typer.Exit(2) from None


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn paymq's errors into a clear message and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except BrokerUnavailable as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except PaymqError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("init")
@friendly
def keys_init() -> None:
    """Create a working key set (producer, worker, card sealing) unless it exists."""
    from common.keygen import init_keys

    settings = load_settings()
    created = init_keys(
        settings.keys_dir,
        producer_key_id=settings.producer_key_id,
        worker_key_id=settings.worker_key_id,
        sealing_key_id="card-seal-1",
    )
    for key in created:
        typer.echo(f"created {key.key_id}: {key.private_path} (private), {key.trusted_path}")
    if not created:
        typer.echo(f"keys already present in {settings.keys_dir}")


@keys_app.command("generate")
@friendly
def keys_generate(
    key_id: Annotated[str, typer.Option(help="Unique key id, e.g. shop-2026-11.")],
    role: Annotated[str, typer.Option(help="producer, worker or sealing.")] = "producer",
    owner: Annotated[str, typer.Option(help="Who holds the private key.")] = "producer",
    channels: Annotated[
        str, typer.Option(help="Comma-separated channels.")
    ] = "card,digital_currency",
) -> None:
    """Generate a key pair: private/<id>.pem (0600) and trusted/<id>.json (the keyring entry)."""
    from common.keygen import generate_key
    from common.keyring import KeyRole

    settings = load_settings()
    key = generate_key(
        settings.keys_dir,
        key_id=key_id,
        owner=owner,
        role=KeyRole(role),
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
    )
    typer.echo(f"private key: {key.private_path}\ntrusted key: {key.trusted_path}")
    typer.echo("Copy the trusted key to every keyring before signing with the new key.")


@keys_app.command("retire")
@friendly
def keys_retire(key_id: str) -> None:
    """Mark a trusted key retired: its signatures are refused from then on."""
    from common.keygen import set_status
    from common.keyring import KeyStatus

    path = set_status(load_settings().keys_dir, key_id, KeyStatus.RETIRED)
    typer.echo(f"retired {key_id} ({path})")


@keys_app.command("list")
@friendly
def keys_list() -> None:
    """List the keyring: key id, owner, role, channels, status."""
    from common.keyring import TRUSTED_DIR, Keyring

    for key in Keyring.load(load_settings().keys_dir / TRUSTED_DIR).trusted_keys():
        channels = ",".join(key.channels)
        typer.echo(f"{key.key_id:24} {key.owner:16} {key.role:9} {key.status:8} {channels}")


# --- topology ----------------------------------------------------------------------------------


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


# --- the system --------------------------------------------------------------------------------


@app.command()
@friendly
def worker(
    channel: Annotated[str, typer.Argument(help="card or digital_currency")],
) -> None:
    """Consume and execute payments of one channel until SIGTERM/SIGINT (drains in-flight)."""
    from workers.main import run_worker

    settings = load_settings()
    logs.configure(settings.log_level)
    run_worker(settings, channel)


@app.command()
@friendly
def reconcile() -> None:
    """Settle pending and in-doubt payments by asking the provider, until SIGTERM/SIGINT
    (workers also do this unless PAYMQ_WORKER_RECONCILES=false)."""
    from workers.main import run_reconciler

    settings = load_settings()
    logs.configure(settings.log_level)
    run_reconciler(settings)


@app.command()
@friendly
def status(
    payment_id: Annotated[str, typer.Argument(help="The payment id (UUID).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """A payment's state and history: attempts, provider references, result (masked)."""
    from paymq.status import show_status

    raise typer.Exit(show_status(load_settings(), payment_id, as_json=as_json))


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create the payment store's schema, or migrate it to this version (idempotent)."""
    from workers.store.database import create_store_engine, upgrade

    settings = load_settings()
    engine = create_store_engine(settings.database_url)
    revision = upgrade(engine)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)} is at schema {revision}")


@db_app.command("current")
@friendly
def db_current() -> None:
    """Print the store's schema revision, and the one this paymq needs."""
    from workers.store.database import create_store_engine, current_revision, head_revision

    engine = create_store_engine(load_settings().database_url)
    typer.echo(f"store: {current_revision(engine) or 'none'}, needed: {head_revision()}")


@dlq_app.command("list")
@friendly
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every message in the dead-letter queue with why it is there (the queue is unchanged)."""
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


@app.command()
@friendly
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8099,
    latency_ms: Annotated[int, typer.Option(help="Delay added to every provider call.")] = 0,
) -> None:
    """Run the provider sandbox: card charges and payouts over HTTP (docs/sandbox.md)."""
    from sandbox.server import serve

    logs.configure(load_settings().log_level)
    serve(host, port, latency_ms=latency_ms, on_ready=lambda url: typer.echo(f"sandbox on {url}"))


@app.command()
@friendly
def publish(
    file: Annotated[Path | None, typer.Option(help="JSON Lines file of payment orders.")] = None,
    channel: Annotated[str, typer.Option(help="card or digital_currency.")] = "card",
    amount: Annotated[str | None, typer.Option(help="Amount in major units, e.g. 10.50.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code (or ETH/USDC).")] = "USD",
    token: Annotated[str | None, typer.Option(help="Provider card token, e.g. tok_visa.")] = None,
    card_number: Annotated[str | None, typer.Option(help="Card number (sealed at once).")] = None,
    expiry: Annotated[str | None, typer.Option(help="Card expiry MM/YYYY.")] = None,
    cvc: Annotated[str | None, typer.Option(help="Card CVC.")] = None,
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
                card_number=card_number,
                expiry=expiry,
                cvc=cvc,
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


@app.command()
@friendly
def demo(
    external: Annotated[
        bool, typer.Option(help="Use running workers and sandbox instead of starting them.")
    ] = False,
    keep: Annotated[bool, typer.Option(help="Keep the demo's queues and keys afterwards.")] = False,
) -> None:
    """Run the system end to end: sandbox, one worker per channel, a mixed batch of payments
    (successes, declines, retries, a forged and an expired message), and a summary."""
    from paymq.demo import run_demo

    raise typer.Exit(run_demo(load_settings(), external=external, keep=keep))


@app.command()
@friendly
def bench(
    payments: Annotated[int, typer.Option(help="Payments to push through.")] = 5000,
    provider_latency_ms: Annotated[int, typer.Option(help="Sandbox delay per call.")] = 50,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    concurrency: Annotated[int, typer.Option(help="Payments in flight per worker.")] = 64,
    rate: Annotated[int, typer.Option(help="Publish rate per second (0: all at once).")] = 0,
    verify_results: Annotated[
        bool, typer.Option(help="Collect results as a verifying subscriber would.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure payments/s and publish-to-result latency through the real pipeline."""
    from paymq.bench import BenchOptions, run_bench

    options = BenchOptions(
        payments=payments,
        provider_latency_ms=provider_latency_ms,
        workers=workers,
        concurrency=concurrency,
        rate_per_s=rate,
        as_json=as_json,
        verify_results=verify_results,
    )
    raise typer.Exit(run_bench(load_settings(), options))


@app.command("contract")
@friendly
def contract(
    directory: Annotated[Path, typer.Option(help="Where schemas/ and vectors/ go.")] = Path("docs"),
    sealed: Annotated[
        bool, typer.Option(help="Also write a new (random) sealed-card vector.")
    ] = False,
) -> None:
    """Write the JSON Schemas of the contract and the test vectors."""
    from paymq.contract import export

    for path in export(directory, include_sealed=sealed):
        typer.echo(f"wrote {path}")


@config_app.command("show")
@friendly
def config_show() -> None:
    """Print the effective configuration (secrets redacted)."""
    from common.amqp.convert import redact

    for name, value in load_settings().model_dump(mode="json").items():
        shown = redact(value) if name == "amqp_url" else value
        typer.echo(f"PAYMQ_{name.upper()}={shown}")


@config_app.command("docs")
def config_docs() -> None:
    """Print docs/configuration.md, generated from the settings class."""
    from paymq.configdoc import render

    sys.stdout.write(render())


def main() -> None:
    app()

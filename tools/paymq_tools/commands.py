"""The tools' commands, added to `paymq` through the `paymq.commands` entry point: `paymq demo`,
`paymq bench`, `paymq bench-chain`, `paymq chaos`, `paymq localstripe` and `paymq contract`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymq.clikit import friendly, load_settings
from paymq_tools.chaos.cli import chaos_app

app = typer.Typer()


def register(paymq_app: typer.Typer) -> None:
    """Add the tools' commands to the `paymq` command."""
    paymq_app.registered_commands.extend(app.registered_commands)
    paymq_app.add_typer(chaos_app, name="chaos")


@app.command()
@friendly
def localstripe(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8420,
    state_file: Annotated[
        Path | None, typer.Option(help="Keep state in this file (default: in memory only).")
    ] = None,
) -> None:
    """Run the localstripe Stripe emulator with state of its own and PaymentIntent search
    (for tests and the demo; paymq_tools/localstripe.py)."""
    from paymq_tools.localstripe import serve

    serve(host, port, state_file)


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
    from paymq_tools.demo.run import run_demo

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
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The payment store the workers share, e.g. a PostgreSQL URL (default: a fresh "
            "SQLite file)."
        ),
    ] = None,
    hosts: Annotated[
        int,
        typer.Option(
            min=1,
            help="Spread the workers over this many stand-in hosts: each a process group with "
            "its own working directory and its own copy of the worker's keys (above 1: needs a "
            "PostgreSQL --database-url).",
        ),
    ] = 1,
    keep: Annotated[
        bool,
        typer.Option(
            help="Keep the bench's directory (keys, store, logs) after a run that succeeded; "
            "one that failed is always kept."
        ),
    ] = False,
) -> None:
    """Measure payments/s and publish-to-result latency through the real pipeline."""
    from paymq_tools.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        payments=payments,
        provider_latency_ms=provider_latency_ms,
        workers=workers,
        concurrency=concurrency,
        rate_per_s=rate,
        as_json=as_json,
        verify_results=verify_results,
        database_url=database_url,
        hosts=hosts,
        keep=keep,
    )
    raise typer.Exit(run_bench(load_settings(), options))


@app.command("bench-chain")
@friendly
def bench_chain(
    payouts: Annotated[int, typer.Option(help="On-chain payouts to make.")] = 300,
    processes: Annotated[int, typer.Option(help="Worker processes sharing the wallet.")] = 2,
    threads: Annotated[int, typer.Option(help="Threads per process.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="The payment store holding the nonces (default: a fresh SQLite file)."),
    ] = None,
) -> None:
    """Measure on-chain payouts/s from one hot wallet on a local anvil, and check every nonce
    was used once and every payout landed once."""
    from paymq_tools.bench.chain import ChainBenchOptions, run_chain_bench

    options = ChainBenchOptions(payouts, processes, threads, as_json, database_url)
    raise typer.Exit(run_chain_bench(options))


@app.command("contract")
@friendly
def contract(
    directory: Annotated[Path, typer.Option(help="Where schemas/ and vectors/ go.")] = Path("docs"),
    sealed: Annotated[
        bool, typer.Option(help="Also write a new (random) sealed-card vector.")
    ] = False,
) -> None:
    """Write the JSON Schemas of the contract and the test vectors."""
    from paymq_tools.contract import export

    for path in export(directory, include_sealed=sealed):
        typer.echo(f"wrote {path}")

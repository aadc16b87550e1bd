"""`paymq chaos run`: the fault-injection suite from the command line (docs/faults.md).

Registered in the main CLI with `app.add_typer(chaos_app, name="chaos")`; also runnable as
`python -m paymq_tools.chaos run`.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from paymq_tools.chaos.scenarios import SCENARIOS, by_name

if TYPE_CHECKING:
    from paymq_tools.chaos.suite import SuiteResult

chaos_app = typer.Typer(
    help="Fault injection: real workers, a private RabbitMQ node (or a cluster of three), and "
    "a checker that accounts for every payment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COLUMNS = (
    ("payments", "payments"),
    ("confirmed", "confirmed"),
    ("lost", "lost"),
    ("dup.\neffects", "duplicated_effects"),
    ("conflict-\ning", "conflicting"),
    ("charged,\nno result", "charged_unpublished"),
    ("stuck", "stuck"),
    ("dead-\nlettered", "dead_lettered"),
    ("redeli-\nveries", "redeliveries"),
    ("in doubt\nresolved", "in_doubt_resolved"),
    ("kills", "kills"),
    ("broker\nrestarts", "broker_restarts"),
    ("cluster\nfaults", "cluster_faults"),
    ("recov-\nery s", "recovery_s"),
    ("s", "seconds"),
)
#: Wide enough for the table where stdout is not a terminal (CI logs, files).
_TABLE_WIDTH = 190


@chaos_app.callback()
def chaos() -> None:
    """Fault injection: real workers, a private RabbitMQ node (or a cluster of three), and a
    checker that accounts for every payment (docs/faults.md)."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the node, the workers and the sandbox are stopped.
    raise KeyboardInterrupt(signal.Signals(signum).name)


@chaos_app.command("run")
def run(
    payments: Annotated[int, typer.Option(min=1, help="Payments per scenario.")] = 2000,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Scenario to run (repeatable; default: all, the single-node ones on one "
            "private node, then the cluster ones on a private cluster of three): "
            + ", ".join(s.name for s in SCENARIOS)
            + " (`paymq chaos list` says what each does)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    keep: Annotated[
        bool, typer.Option(help="Keep each run's logs and store, and the node's data and logs.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the payment mix.")] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            help="Keep each scenario's payment store in a throwaway database on this PostgreSQL "
            "server (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres) "
            "instead of a SQLite file."
        ),
    ] = None,
) -> None:
    """Run the scenarios; exit 1 if any payment is lost, duplicated, conflicting or stuck."""
    # The machinery is imported here, so `paymq --help` stays fast.
    from paymq_tools.chaos.nodectl import rabbitmq_installed
    from paymq_tools.chaos.runner import RunOptions
    from paymq_tools.chaos.suite import run_suite

    console = Console(stderr=True, highlight=False)
    if not rabbitmq_installed():
        console.print("[red]error:[/red] rabbitmq-server is not installed")
        raise typer.Exit(2)
    try:
        chosen = by_name(scenario)
    except KeyError as exc:
        console.print(f"[red]error:[/red] {exc.args[0]}")
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        options = RunOptions(payments, keep, seed, postgres_admin_url=postgres_url)
        result = run_suite(chosen, options, console, keep_node=keep)
    except KeyboardInterrupt:
        console.print("interrupted; everything started was stopped")
        raise typer.Exit(130) from None
    if as_json:
        print(json.dumps(_as_json(result), indent=2))
    else:
        width = None if sys.stdout.isatty() else _TABLE_WIDTH
        Console(highlight=False, width=width).print(_table(result))
    raise typer.Exit(0 if result.passed else 1)


@chaos_app.command("list")
def list_scenarios() -> None:
    """The scenarios, in suite order, with what each runs and breaks."""
    for scenario in SCENARIOS:
        where = "cluster of 3" if scenario.cluster else "one node"
        print(f"{scenario.name} ({where}): {scenario.describe()}")


@chaos_app.command("hold-sqlite-lock", hidden=True)
def hold_sqlite_lock(
    path: Annotated[Path, typer.Argument(help="The store's SQLite file.")],
    seconds: Annotated[float, typer.Option(min=0.0, help="How long to hold the lock.")] = 45.0,
) -> None:
    """Hold a SQLite file's write lock (BEGIN IMMEDIATE) for a while: the sqlite-lock
    scenario's other process."""
    from paymq_tools.chaos.sqlitelock import hold_write_lock

    hold_write_lock(path, seconds, say=lambda line: print(line, flush=True))


def _as_json(result: SuiteResult) -> dict[str, object]:
    from paymq_tools.chaos.outcome import row

    return {
        "passed": result.passed,
        "scenarios": [row(o) for o in result.outcomes],
        "failures": result.failures,
    }


def _cluster_faults(values: dict[str, Any]) -> str:
    counts = (
        (values["node_kills"], "kill"),
        (values["node_restarts"], "restart"),
        (values["node_partitions"], "partition"),
        (values["leader_transfers"], "leader move"),
    )
    return ", ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in counts if n) or "-"


def _table(result: SuiteResult) -> Table:
    from paymq_tools.chaos.outcome import row

    table = Table(title="paymq chaos", title_justify="left")
    table.add_column("scenario", min_width=max(len(s.name) for s in SCENARIOS))
    for title, _ in _COLUMNS:
        table.add_column(title, justify="right")
    table.add_column("")
    for outcome in result.outcomes:
        values = row(outcome)
        values["dead_lettered"] = sum(values["dead_lettered"].values())
        values["kills"] = values["worker_kills"] + values["worker_crashes"]
        values["cluster_faults"] = _cluster_faults(values)
        if values["recovery_s"] is None:
            values["recovery_s"] = "-"
        verdict = "[green]ok[/green]" if not values["violations"] else "[red]FAIL[/red]"
        table.add_row(outcome.scenario, *(str(values[key]) for _, key in _COLUMNS), verdict)
    for name, error in result.failures.items():
        table.add_row(name, *("-" for _ in _COLUMNS), f"[red]error: {error[:60]}[/red]")
    return table

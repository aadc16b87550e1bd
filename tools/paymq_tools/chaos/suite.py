"""The whole suite: the chosen scenarios in turn, one row of figures each; the single-node
scenarios on one private broker, then the cluster scenarios on a private cluster of three.
Each is started only when a chosen scenario needs it, and stopped before the next one starts
(three nodes and the workers already fill a small machine)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from rich.console import Console

from common.errors import PaymqError, SetupError
from paymq_tools.chaos.broker import Broker
from paymq_tools.chaos.cluster import PrivateCluster
from paymq_tools.chaos.node import PrivateBroker
from paymq_tools.chaos.outcome import ScenarioOutcome
from paymq_tools.chaos.runner import RunOptions, run_scenario
from paymq_tools.chaos.scenario import Scenario
from paymq_tools.errors import ToolError


@dataclass
class SuiteResult:
    outcomes: list[ScenarioOutcome] = field(default_factory=list)
    #: Scenarios that could not run to the end (the harness, not the checker, failed).
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures and not any(o.violations() for o in self.outcomes)


def run_suite(
    scenarios: list[Scenario], options: RunOptions, console: Console, *, keep_node: bool = False
) -> SuiteResult:
    result = SuiteResult()
    for cluster in (False, True):
        chosen = [s for s in scenarios if s.cluster == cluster]
        if not chosen:
            continue
        broker: AbstractContextManager[Broker] = (
            PrivateCluster(say=console.print, keep=keep_node)
            if cluster
            else PrivateBroker(say=console.print, keep=keep_node)
        )
        try:
            with broker as started:
                for scenario in chosen:
                    _run_one(scenario, started, options, console, result)
        except (PaymqError, SetupError, ToolError) as exc:  # the node or the cluster did not start
            console.print(f"[red]the {'cluster' if cluster else 'node'} failed:[/red] {exc}")
            for scenario in chosen:
                result.failures.setdefault(scenario.name, str(exc))
    return result


def _run_one(
    scenario: Scenario, broker: Broker, options: RunOptions, console: Console, result: SuiteResult
) -> None:
    try:
        outcome = run_scenario(scenario, broker, options, console)
    except (PaymqError, SetupError, ToolError) as exc:
        console.print(f"[red]{scenario.name} could not run:[/red] {exc}")
        result.failures[scenario.name] = str(exc)
        return
    result.outcomes.append(outcome)
    for line in outcome.violations():
        console.print(f"  [red]✗[/red] {line}")
    if not outcome.violations():
        console.print("  [green]✓[/green] every payment accounted for")

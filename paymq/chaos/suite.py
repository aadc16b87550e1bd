"""The whole suite: one private broker, the chosen scenarios in turn, one row of figures each."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console

from common.errors import PaymqError
from paymq.chaos.node import PrivateBroker
from paymq.chaos.outcome import ScenarioOutcome
from paymq.chaos.runner import RunOptions, run_scenario
from paymq.chaos.scenarios import Scenario


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
    with PrivateBroker(say=console.print, keep=keep_node) as broker:
        for scenario in scenarios:
            try:
                outcome = run_scenario(scenario, broker, options, console)
            except PaymqError as exc:
                console.print(f"[red]{scenario.name} could not run:[/red] {exc}")
                result.failures[scenario.name] = str(exc)
                continue
            result.outcomes.append(outcome)
            for line in outcome.violations():
                console.print(f"  [red]✗[/red] {line}")
            if not outcome.violations():
                console.print("  [green]✓[/green] every payment accounted for")
    return result

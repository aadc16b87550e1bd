"""What one scenario's run found: the checker's report and the figures of the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paymq_tools.chaos.checker import Report
from paymq_tools.chaos.crew import NO_BROKER_AT_START_EXIT


@dataclass(frozen=True)
class Figures:
    payments: int
    messages_published: int
    #: Publishes the producer repeated (same message id) for want of a confirm.
    republished: int
    seconds: float
    worker_kills: int
    worker_crashes: int
    worker_replacements: int
    #: Workers that exited by themselves other than at a crash point, by exit status.
    worker_exits: dict[int, int]
    broker_restarts: int
    connection_closes: int
    memory_alarms: int
    disk_alarms: int
    store: bool
    #: Where the store was: "sqlite" (a file) or "postgresql" (a throwaway database).
    database: str
    reconciler: bool
    settled: bool
    harness_errors: tuple[str, ...]
    #: Chain scenarios: transactions the hot wallet signed, and what is wrong with them (a
    #: nonce used twice or skipped, a signed transaction never mined).
    chain_transactions: int = 0
    chain_problems: tuple[str, ...] = ()
    #: Link faults: flaps and partitions begun, connections the link proxies reset, of those
    #: the resets that cut a chunk in two (the peer got half a frame), and the resets passed
    #: on from one side to the other (e.g. after a partition healed, from a broker that had
    #: closed its side meanwhile).
    link_flaps: int = 0
    partitions: int = 0
    link_resets: int = 0
    link_cuts_mid_chunk: int = 0
    link_resets_passed_on: int = 0
    #: Store faults: immediate stops of the private PostgreSQL, SQLite write locks held.
    database_stops: int = 0
    sqlite_locks: int = 0
    #: What the workers' logs and the store show: stall points reached, channels closed by the
    #: broker's consumer timeout, claims taken over after their lease ran out.
    stalls: int = 0
    consumer_timeouts: int = 0
    claim_takeovers: int = 0
    #: Cluster faults: nodes SIGKILLed, nodes started again (after a kill or in a rolling
    #: restart), nodes cut off from the others, quorum queue leaders moved.
    node_kills: int = 0
    node_restarts: int = 0
    node_partitions: int = 0
    leader_transfers: int = 0
    #: The longest time without a result event while a cluster fault lasted (recovery.py);
    #: None for scenarios whose faults record no span.
    recovery_s: float | None = None
    #: The end of the log of each worker that died unexpectedly (crew.py).
    worker_last_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenarioOutcome:
    scenario: str
    report: Report
    figures: Figures
    kept_dir: Path | None

    def violations(self) -> list[str]:
        found = self.report.violations()
        if not self.figures.settled:
            found.append("not settled before the deadline (see lost and stuck)")
        died = {
            code: count
            for code, count in self.figures.worker_exits.items()
            if code != NO_BROKER_AT_START_EXIT
        }
        if died:
            statuses = ", ".join(f"{count} with status {code}" for code, count in died.items())
            found.append(f"workers died by themselves: {statuses} (see their logs)")
            found.extend(f"  last words of {words}" for words in self.figures.worker_last_words)
        found.extend(f"harness: {error}" for error in self.figures.harness_errors)
        found.extend(f"chain: {problem}" for problem in self.figures.chain_problems)
        return found


def row(outcome: ScenarioOutcome) -> dict[str, Any]:
    """Everything about one scenario, for --json and the table."""
    report, figures = outcome.report, outcome.figures
    return {
        "scenario": outcome.scenario,
        **asdict(figures),
        "confirmed": report.confirmed,
        "lost": len(report.lost),
        "duplicated_effects": len(report.duplicated_effects),
        "conflicting": report.conflicting,
        "unstable_events": len(report.unstable_events),
        "effects_unreported": len(report.effects_unreported),
        "charged_unpublished": len(report.charged_unpublished),
        "unexpected_outcomes": len(report.unexpected_outcomes),
        "stuck": len(report.stuck),
        "undeserved_dead_letters": len(report.undeserved_dead_letters),
        "dead_lettered": dict(report.dead_lettered),
        "redeliveries": report.redeliveries,
        "reissued_events": report.reissued_events,
        "in_doubt_resolved": report.in_doubt_resolved,
        "in_doubt_unresolved": len(report.in_doubt_unresolved),
        "effects_by_provider": dict(report.effects_by_provider),
        "final_statuses": dict(report.final_statuses),
        "violations": outcome.violations(),
        "kept_dir": str(outcome.kept_dir) if outcome.kept_dir else None,
    }

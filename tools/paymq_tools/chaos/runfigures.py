"""A scenario run's figures, counted by its crew, its disturbances, the link proxies, the
worker logs and the result collector; and the same counts as the progress line's tally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paymq_tools.chaos.outcome import Figures
from paymq_tools.chaos.recovery import longest_gap_s

if TYPE_CHECKING:
    from paymq_tools.chaos.runner import Run


def run_figures(run: Run, payments: int, settled: bool, seconds: float) -> Figures:
    tally, done, evidence = run.crew.tally, run.stage.done, run.evidence
    links = run.wiring.link_stats().values()
    return Figures(
        payments=payments,
        messages_published=payments * run.scenario.copies,
        republished=run.republished,
        seconds=round(seconds, 1),
        worker_kills=tally.kills,
        worker_crashes=tally.crashes,
        worker_replacements=tally.started - run.crew.size,
        worker_exits=dict(tally.other_exits),
        worker_last_words=tuple(tally.last_words),
        broker_restarts=done["broker restarts"],
        connection_closes=done["connection closes"],
        memory_alarms=done["memory alarms"],
        disk_alarms=done["disk alarms"],
        store=run.services.store_ready,
        database=run.wiring.database_kind,
        reconciler=run.services.reconciler_ran,
        settled=settled,
        harness_errors=tuple(run.stage.errors),
        link_flaps=done["link flaps"],
        partitions=done["partitions"],
        link_resets=sum(link.resets for link in links),
        link_cuts_mid_chunk=sum(link.cut_mid_chunk for link in links),
        link_resets_passed_on=sum(link.passed_on for link in links),
        database_stops=done["database stops"],
        sqlite_locks=done["sqlite locks"],
        stalls=evidence.stalls,
        consumer_timeouts=evidence.consumer_timeouts,
        claim_takeovers=evidence.claim_takeovers,
        node_kills=done["node kills"],
        node_restarts=done["node restarts"],
        node_partitions=done["node partitions"],
        leader_transfers=done["leader transfers"],
        recovery_s=longest_gap_s((a.at_s for a in run.collector.arrivals()), run.stage.spans),
    )


def tally(run: Run) -> str:
    tally, done = run.crew.tally, run.stage.done
    parts = {
        "kills": tally.kills,
        "crashes": tally.crashes,
        "broker restarts": done["broker restarts"],
        "closes": done["connection closes"],
        "alarms": done["memory alarms"] + done["disk alarms"],
        "link resets": sum(link.resets for link in run.wiring.link_stats().values()),
        "partitions": done["partitions"],
        "database stops": done["database stops"],
        "sqlite locks": done["sqlite locks"],
        "node kills": done["node kills"],
        "node restarts": done["node restarts"],
        "node partitions": done["node partitions"],
        "leader moves": done["leader transfers"],
    }
    return " · ".join(f"{name} {count}" for name, count in parts.items() if count)

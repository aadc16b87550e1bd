"""The end of a scenario's run: waiting until every confirmed payment is resolved and the work
and retry queues are empty, then taking stock for the checker: what was published, every copy
of every result event, the providers' effects, the dead letters and what is left in the queues.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from common.amqp.admin import BrokerAdmin
from common.models import PaymentStatus
from common.subscriber import ResultEvent
from paymq_tools.chaos.evidence import gather
from paymq_tools.chaos.observations import Observations, Published, ReceivedEvent
from paymq_tools.chaos.progress import RunProgress
from paymq_tools.chaos.publishing import Prepared
from paymq_tools.chaos.queues import dead_letters, leftovers, work_and_retry_queues

if TYPE_CHECKING:
    from paymq_tools.chaos.runner import Run


#: Room for one reconciler check held by a killed worker (the store holds a check for 60 s).
SETTLE_TIMEOUT_S = 150.0
QUIET_S = 1.0
QUEUE_CHECK_INTERVAL_S = 2.0


def _resolved(statuses: set[PaymentStatus] | None, reconciler: bool) -> bool:
    """Terminal; or, with no reconciler to resolve it, pending or in doubt."""
    if not statuses:
        return False
    return any(s.terminal for s in statuses) or not reconciler


def settle(run: Run, expected: set[str], progress: RunProgress) -> bool:
    """Until every confirmed payment is resolved, results stopped coming and the work and
    retry queues are empty (ready and unacked), or the deadline."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    next_queue_check = 0.0
    reconciler = run.services.reconciler_ran
    while time.monotonic() < deadline:
        statuses = run.collector.statuses()
        done = sum(1 for p in expected if _resolved(statuses.get(p), reconciler))
        progress.settled(done, len(expected))
        now = time.monotonic()
        quiet = run.collector.quiet_for_s() >= QUIET_S
        if done == len(expected) and quiet and now >= next_queue_check:
            next_queue_check = now + QUEUE_CHECK_INTERVAL_S
            if _queues_empty(run):
                return True
        time.sleep(0.25)
    return False


def _queues_empty(run: Run) -> bool:
    watched = set(work_and_retry_queues(run.topology))
    depths = run.broker.queue_depths(run.topology.prefix)
    return all(d.total == 0 for d in depths if d.name in watched)


def take_stock(run: Run, prepared: list[Prepared], confirmed: set[str]) -> Observations:
    run.crew.stop_supervising()
    run.workers.stop(timeout_s=15)
    run.services.stop_reconciler()
    with BrokerAdmin(run.settings.broker.amqp_url, name="paymq-chaos-inspect") as admin:
        left = leftovers(admin, run.topology)
        letters = dead_letters(admin, run.topology)
    # Workers that were draining may have settled their last payments: let those arrive.
    deadline = time.monotonic() + 10.0
    while run.collector.quiet_for_s() < 2 * QUIET_S and time.monotonic() < deadline:
        time.sleep(0.1)
    run.collector.stop()
    run.evidence = gather(run.work_dir, run.services.database_url)
    return Observations(
        published=[
            Published(
                p.payment.payment_id,
                p.message.message_id,
                p.payment.expect,
                p.message.message_id in confirmed,
            )
            for p in prepared
        ],
        events=[_received(a.event) for a in run.collector.arrivals()],
        effects=run.services.effects(stripe=run.scenario.stripe)
        + (run.chain.effects(p.payment.draft for p in prepared) if run.chain else []),
        dead_letters=letters,
        leftovers=left,
        reconciler_ran=run.services.reconciler_ran,
    )


def _received(event: ResultEvent) -> ReceivedEvent:
    """A copy of a result event as the checker takes it: its id, raw bytes and verified result."""
    return ReceivedEvent(event.message.message_id or "", event.message.body, event.result)

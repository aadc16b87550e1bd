"""Publishing a run's payments at a steady pace, with confirms, through the producer library
(which republishes an unconfirmed message, same bytes and id, after a reconnection)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common.envelope import OutboundMessage
from paymq_tools.chaos.workload import PlannedPayment
from producer.producer import Producer

TICK_S = 0.25


@dataclass(frozen=True)
class Prepared:
    payment: PlannedPayment
    message: OutboundMessage


@dataclass
class PublishTally:
    #: Ids of the messages the broker confirmed at least once.
    confirmed: set[str] = field(default_factory=set)
    #: Publishes repeated, same bytes and message id, after a confirm timeout (a blocked
    #: connection), a nack or a lost connection.
    republished: int = 0


def prepare(producer: Producer, planned: list[PlannedPayment]) -> list[Prepared]:
    """Seal and sign every payment before the clock starts."""
    return [Prepared(p, producer.prepare(p.draft)[1]) for p in planned]


def publish_paced(
    producer: Producer,
    prepared: list[Prepared],
    *,
    copies: int,
    window_s: float,
    on_progress: Callable[[int], None],
) -> PublishTally:
    """Publish every message `copies` times in a row, spread evenly over `window_s`."""
    messages = [item.message for item in prepared for _ in range(copies)]
    per_tick = max(1, math.ceil(len(messages) * TICK_S / window_s))
    start = time.monotonic()
    tally = PublishTally()
    for tick, offset in enumerate(range(0, len(messages), per_tick)):
        # Paced by the schedule, not by the previous batch: a batch held up by a broker
        # restart is followed by the next ones at once.
        delay_s = start + tick * TICK_S - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        batch = messages[offset : offset + per_tick]
        for outcome in producer.publish_many(batch):
            tally.republished += outcome.attempts - 1
            if outcome.ok:
                tally.confirmed.add(outcome.message_id)
        on_progress(offset + len(batch))
    return tally

"""What a run's own records say happened, to show that a fault did what it was meant to: lines
in the worker logs (stall points reached, channels closed by the broker's consumer timeout) and
the claims the store records as taken over."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from store.claims import TAKEOVER_REASON
from store.schema import transitions

logger = logging.getLogger("paymq.chaos")

#: workers/crashpoints.py, when a thread holds still at its stall point.
STALL_LINE = "stall point"
#: The session's line when RabbitMQ closed its channel because a delivery outlived the
#: consumer timeout (pika's own line about the same close says "Received remote").
CONSUMER_TIMEOUT_LINE = "closed: (406, 'PRECONDITION_FAILED - delivery acknowledgement"


@dataclass(frozen=True)
class Evidence:
    stalls: int
    consumer_timeouts: int
    claim_takeovers: int


def gather(work_dir: Path, database_url: str) -> Evidence:
    logs = sorted(work_dir.glob("worker-*.log"))
    return Evidence(
        stalls=count_lines(logs, STALL_LINE),
        consumer_timeouts=count_lines(logs, CONSUMER_TIMEOUT_LINE),
        claim_takeovers=claim_takeovers(database_url),
    )


def count_lines(paths: list[Path], needle: str) -> int:
    found = 0
    for path in paths:
        with path.open(errors="replace") as log:
            found += sum(1 for line in log if needle in line)
    return found


def claim_takeovers(database_url: str) -> int:
    """Claims taken over after their lease ran out, as the store's history records them; 0 if
    the store cannot be read (logged)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            counted = connection.execute(
                select(func.count())
                .select_from(transitions)
                .where(transitions.c.reason == TAKEOVER_REASON)
            ).scalar()
    except SQLAlchemyError as exc:
        logger.warning("cannot count claim takeovers in the store: %s", exc)
        return 0
    finally:
        engine.dispose()
    return int(counted or 0)

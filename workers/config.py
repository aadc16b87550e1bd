"""What a worker's handler is configured with: built from settings at the entry point
(workers/main.py), read by the handler and by the dispositions it hands its outcomes to."""

from __future__ import annotations

from dataclasses import dataclass

from common.topology import Topology
from workers.retries import RetryPolicy


@dataclass(frozen=True)
class HandlerConfig:
    channel: str
    topology: Topology
    retry: RetryPolicy
    max_body_bytes: int
    max_clock_skew_ms: int
    #: Delay before the reconciler first looks at a pending or in-doubt payment.
    first_check_ms: int = 60_000
    #: A payment whose claim was taken over this often is poison: not executed again.
    poison_after_takeovers: int = 5
    #: A request delivered this often (x-delivery-count) goes back as a fresh copy before
    #: anything else: lost connections count towards the queue's delivery limit, and must
    #: not exhaust it (0: never).
    refresh_after_deliveries: int = 0

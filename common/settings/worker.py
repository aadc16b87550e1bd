"""The worker section of the settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.scheduling import Scheduling
from common.settings.section import PositiveFloat, PositiveInt, Section, readers


class WorkerSettings(Section):
    """The worker: how many payments it runs at once, how often it tries one, how it drains, and
    how long its claim on a payment lasts."""

    heading = "Worker"
    read_by = ("worker",)

    worker_concurrency: PositiveInt = Field(
        32,
        description="Provider calls in flight per worker process (thread pool size).",
        json_schema_extra=readers("worker", "reconciler"),
    )
    worker_prefetch: PositiveInt | None = Field(
        None, description="Unacked deliveries per worker; default: worker_concurrency."
    )
    max_attempts: PositiveInt = Field(
        5, description="Provider attempts for one payment before it is `failed` (or in doubt)."
    )
    shutdown_grace_s: PositiveFloat = Field(
        30.0, description="On SIGTERM, how long in-flight payments may take to finish."
    )
    health_file: Path | None = Field(
        None, description="If set, a worker touches this file while it is consuming."
    )
    poison_after_takeovers: PositiveInt = Field(
        5,
        description="A payment whose claim had to be taken over this many times (its worker "
        "died holding it each time) is not executed again: it goes in doubt, with a result "
        "event, to the reconciler and to the dead-letter queue (code poison_message).",
    )
    claim_lease_s: PositiveFloat = Field(
        60.0,
        description="How long a worker's claim on a payment lasts; a worker that died "
        "mid-payment holds it no longer than this. Keep it above the provider timeouts.",
    )
    worker_reconciles: bool = Field(
        True, description="Workers also run the reconciler (besides `paymq reconcile`)."
    )
    worker_scheduling: Scheduling = Field(
        "batch",
        description="How Linux schedules the worker's threads: `batch` (SCHED_BATCH: a thread "
        "woken by another does not preempt it while it holds the GIL; fewer context switches "
        "and less CPU per payment, docs/performance.md) or `normal` (SCHED_OTHER, as other "
        "processes). Needs no privilege; ignored elsewhere than Linux.",
    )

    @property
    def prefetch(self) -> int:
        return self.worker_prefetch or self.worker_concurrency

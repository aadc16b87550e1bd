"""The faults section of the settings."""

from __future__ import annotations

from pydantic import Field

from common.settings.section import PositiveFloat, PositiveInt, Section


class FaultSettings(Section):
    """Fault injection, for the fault suite and the tests only: crash points and stalls a worker
    honours when told to (workers/crashpoints.py). Never set in production; kept apart so that
    nobody takes them for a production knob."""

    heading = "Fault injection (tests only)"
    read_by = ("worker",)

    crash_at: str | None = Field(
        None,
        description="Fault injection only: a worker exits at this step of a payment "
        "(after_provider_call, after_store_commit, after_result_publish, before_ack).",
    )
    crash_every: PositiveInt = Field(
        1, description="Fault injection only: crash on every n-th payment reaching crash_at."
    )
    crash_reference_prefix: str | None = Field(
        None,
        description="Fault injection only: crash only on payments whose merchant reference "
        "starts with this (a payment that kills every worker that takes it).",
    )
    stall_at: str | None = Field(
        None,
        description="Fault injection only: a worker thread holds still at this step of a "
        "payment (the crash points' names) for stall_s, then goes on.",
    )
    stall_s: PositiveFloat = Field(
        10.0, description="Fault injection only: how long a thread holds still at stall_at."
    )
    stall_every: PositiveInt = Field(
        1, description="Fault injection only: stall on every n-th payment reaching stall_at."
    )

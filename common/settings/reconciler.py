"""The reconciler section of the settings."""

from __future__ import annotations

from pydantic import Field

from common.settings.section import PositiveFloat, Section, readers


class ReconcilerSettings(Section):
    """The reconciler: when it looks at an unsettled payment again, and when it takes a claim or an
    unconfirmed result for abandoned."""

    heading = "Reconciler"
    read_by = ("reconciler",)

    reconcile_schedule_s: tuple[PositiveFloat, ...] = Field(
        (60.0, 300.0, 1800.0, 7200.0, 21600.0),
        description="When the reconciler looks at a pending or in-doubt payment again: minutes, "
        "then hours. An in-doubt payment the provider never heard of by the last check failed.",
        json_schema_extra=readers("worker", "reconciler"),
    )
    payer_action_timeout_s: PositiveFloat = Field(
        3600.0,
        description="A payment still waiting for its payer (3-D Secure) this long after it was "
        "created is canceled at the provider by the reconciler and declined with code "
        "payer_action_expired. It is checked on the reconcile schedule.",
    )
    reconcile_interval_s: PositiveFloat = Field(
        5.0, description="How often a reconciler looks for payments due for a check."
    )
    republish_after_s: PositiveFloat = Field(
        10.0,
        description="A stored result whose publish the broker has not confirmed this long "
        "(its worker crashed, lost its channel, or had its delivery dead-lettered) is "
        "published again from the store, byte for byte, by a reconciler.",
    )
    abandoned_claim_after_s: PositiveFloat = Field(
        1800.0,
        description="A claimed payment that nobody has touched this long (its delivery was "
        "dead-lettered or lost) is put in doubt by a reconciler, with a result event, and its "
        "provider is asked what happened. Must exceed the longest retry tier plus the claim "
        "lease; a request that waits longer than this in a backlog after its first attempt is "
        "settled from the provider's records instead of being executed again.",
    )

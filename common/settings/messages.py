"""The messages section of the settings."""

from __future__ import annotations

from pydantic import Field

from common.settings.section import PositiveInt, Section, readers


class MessageSettings(Section):
    """Messages: the limits every payment request is held to, on both sides of the broker."""

    heading = "Messages"
    read_by = ("worker",)

    max_body_bytes: PositiveInt = Field(
        65_536,
        description="Larger message bodies are rejected before parsing, and larger HTTP API "
        "bodies with 413 while they are read, before authentication.",
        json_schema_extra=readers("worker", "api", "webhooks", "cli"),
    )
    request_ttl_s: PositiveInt = Field(
        86_400,
        description="Default lifetime of a payment request: long enough to cover backlogs, "
        "retries and broker outages.",
        json_schema_extra=readers("api", "producer"),
    )
    max_clock_skew_s: PositiveInt = Field(
        300, description="A request created further in the future than this is rejected."
    )

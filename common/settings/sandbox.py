"""The sandbox section of the settings."""

from __future__ import annotations

from pydantic import Field

from common.settings.section import Section


class SandboxSettings(Section):
    """The sandbox provider, as the workers reach it."""

    heading = "Sandbox provider"
    read_by = ("worker", "reconciler")

    provider_url: str = Field(
        "http://127.0.0.1:8099", description="Base URL of the sandbox provider."
    )

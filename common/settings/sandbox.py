"""The sandbox provider, as the workers reach it."""

from __future__ import annotations

from pydantic import Field

from common.settings.section import Section


class SandboxSettings(Section):
    heading = "Sandbox provider"

    provider_url: str = Field(
        "http://127.0.0.1:8099", description="Base URL of the sandbox provider."
    )

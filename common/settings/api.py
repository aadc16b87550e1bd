"""The api section of the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from common.settings.section import Section, readers


class ApiSettings(Section):
    """The HTTP payment API (`paymq api serve`)."""

    heading = "HTTP API"
    read_by = ("api",)

    api_host: str = Field("127.0.0.1", description="Interface `paymq api serve` listens on.")
    api_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8080, description="Port `paymq api serve` listens on."
    )
    api_keys_file: Path | None = Field(
        None,
        description="The HTTP API's keys: ids, SHA-256 digests and allowed channels (`paymq "
        "api keys add`). Default: api-keys.json in keys_dir.",
        json_schema_extra=readers("api", "cli"),
    )

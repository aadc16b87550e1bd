"""The store section of the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from common.settings.section import PositiveFloat, Section


class StoreSettings(Section):
    """The payment store: which database, and how long a call to it may wait."""

    heading = "Payment store"
    read_by = ("worker", "reconciler", "api", "webhooks", "cli")
    from_files = ("database_url",)

    database_url: SecretStr = Field(
        SecretStr("sqlite:///paymq.db"),
        description="Payment store: a SQLite file (zero set-up, one host) or a PostgreSQL URL "
        "(postgresql+psycopg://user@host/db) for several worker hosts. A secret, for its "
        "password: never printed whole (`paymq config show` shows it without the password).",
    )
    database_url_file: Path | None = Field(
        None,
        description="A file holding the payment store's URL instead, for its password (a "
        "Docker or Kubernetes secret, e.g. /run/secrets/database_url); read once at start-up. "
        "Setting it and the URL is an error.",
    )
    database_connect_timeout_s: PositiveFloat = Field(
        5.0, description="PostgreSQL: how long connecting to the payment store may take."
    )
    database_timeout_s: PositiveFloat = Field(
        10.0,
        description="The longest each step of a store call may wait: PostgreSQL's "
        "statement_timeout and lock_timeout, and (with TCP keepalives and tcp_user_timeout) a "
        "silent network link; SQLite's busy timeout on a locked file; a free pooled "
        "connection. A call on a dead link (the pooled connection's check, a new connection, "
        "the statement) fails within about twice this plus the connect timeout. Then the store "
        "counts as unavailable: the payment waits in a retry tier, nothing is decided.",
    )

    @model_validator(mode="after")
    def _database_url_from_its_file(self) -> Self:
        text = self._text_from_file("database_url")
        if text is not None:
            self._put_from_file("database_url", SecretStr(text))
        return self

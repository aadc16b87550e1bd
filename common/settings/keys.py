"""The keys section of the settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.settings.section import Section, readers


class KeySettings(Section):
    """Keys: where they are kept and which of them each role signs or seals with."""

    heading = "Keys"
    read_by = ("worker", "reconciler", "api", "webhooks", "producer", "cli")

    keys_dir: Path = Field(
        Path("keys"),
        description="Directory holding trusted/ (public keys: the keyring) and private/.",
    )
    producer_key_id: str = Field(
        "producer-1",
        description="Key that signs payment requests.",
        json_schema_extra=readers("producer", "cli"),
    )
    gateway_key_id: str = Field(
        "gateway-1",
        description="Key the HTTP API signs its payments with: a `gateway` key, whose owner "
        "holds no producer key, so API tenants and producers never share idempotency keys.",
        json_schema_extra=readers("api", "cli"),
    )
    worker_key_id: str = Field(
        "worker-1",
        description="Key that signs result events.",
        json_schema_extra=readers("worker", "reconciler", "cli"),
    )
    sealing_key_id: str | None = Field(
        None,
        description="Card-worker key that producers seal card data for; needed only while "
        "several are active (rotation).",
        json_schema_extra=readers("api", "producer"),
    )

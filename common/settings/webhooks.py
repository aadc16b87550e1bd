"""The webhooks section of the settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.settings.section import PositiveFloat, PositiveInt, Section, readers


class WebhookSettings(Section):
    """Webhooks (`paymq webhooks`, docs/webhooks.md): where the endpoints are kept, how many POSTs
    are in flight, and when a failed delivery is tried again."""

    heading = "Webhooks"
    read_by = ("webhooks",)

    webhook_endpoints_file: Path | None = Field(
        None,
        description="The webhook endpoints: ids, URLs, secrets and filters (`paymq webhooks "
        "add`), mode 0600. Default: webhooks.json in keys_dir.",
        json_schema_extra=readers("webhooks", "cli"),
    )
    webhook_concurrency: PositiveInt = Field(
        8, description="Webhook POSTs in flight per `paymq webhooks run` process."
    )
    webhook_endpoint_concurrency: PositiveInt = Field(
        2,
        description="Of those, at most this many to one endpoint: one that is slow or down "
        "never takes every thread from the others.",
    )
    webhook_retry_schedule_s: tuple[PositiveFloat, ...] = Field(
        (10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 43200.0, 86400.0),
        min_length=1,
        description="Delays between attempts to deliver one event to one endpoint: after the "
        "first attempt fails, the next comes after the first delay, and so on; after the last "
        "delay's attempt fails the delivery is given up (`failed`, see `paymq webhooks "
        "redeliver`). JSON list in the environment.",
    )
    webhook_connect_timeout_s: PositiveFloat = Field(
        3.0, description="Connect timeout of each webhook POST."
    )
    webhook_read_timeout_s: PositiveFloat = Field(
        10.0, description="Read timeout of each webhook POST; a timeout is retried."
    )
    webhook_lease_s: PositiveFloat = Field(
        60.0,
        description="How long a webhooks process holds a delivery it is sending; one that died "
        "mid-send holds it no longer than this. Keep it above the connect plus read timeouts.",
    )
    webhook_poll_interval_s: PositiveFloat = Field(
        1.0, description="How often the webhook sender looks for deliveries due for a retry."
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Let webhook endpoints be on loopback, private (RFC 1918, 100.64/10, "
        "fc00::/7) and other non-global addresses: for endpoints inside your own network. "
        "Link-local (cloud metadata), multicast and unspecified addresses stay refused. "
        "Judged on the address each POST connects to (docs/webhooks.md).",
        json_schema_extra=readers("webhooks", "cli"),
    )

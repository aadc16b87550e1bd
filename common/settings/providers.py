"""The providers section of the settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from common.settings.section import PositiveFloat, PositiveInt, Section

ProviderName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class ProviderSettings(Section):
    """Providers, whichever they are: the route of each channel, the timeouts of every call, and
    the circuit breaker in front of each provider. Each provider's own settings follow in a
    section of its own."""

    heading = "Providers"
    read_by = ("worker", "reconciler")

    card_providers: tuple[ProviderName, ...] = Field(
        ("sandbox",),
        min_length=1,
        description="Card providers in the order they are tried (sandbox, stripe). A payment "
        "goes to the next one only when the one before surely did not act (connection refused, "
        "503 before any effect, 429, circuit open); never after an unknown outcome. JSON list "
        'in the environment, e.g. ["stripe","sandbox"].',
    )
    payout_providers: tuple[ProviderName, ...] = Field(
        ("sandbox",),
        min_length=1,
        description="Digital-currency payout providers, in the order they are tried "
        "(sandbox, ethereum). ethereum pays out on chain from a hot wallet "
        "(docs/ethereum.md).",
    )
    provider_connect_timeout_s: PositiveFloat = Field(
        3.0, description="Connect timeout of every provider call."
    )
    provider_read_timeout_s: PositiveFloat = Field(
        10.0,
        description="Read timeout of every provider call; a timeout after sending is in doubt.",
    )
    breaker_failures: PositiveInt = Field(
        5,
        description="Consecutive failures (refused, timeout, reset, 5xx) that open a "
        "provider's circuit in a worker process.",
    )
    breaker_open_s: PositiveFloat = Field(
        30.0,
        description="How long an open circuit stays open; then one real call probes the "
        "provider, and closes the circuit if it succeeds.",
    )

"""The stripe section of the settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr

from common.settings.section import Section, read_secret_file


class StripeSettings(Section):
    """The Stripe provider: its API and its secret key."""

    heading = "Stripe provider"
    read_by = ("worker", "reconciler")

    stripe_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PAYMQ_STRIPE_API_KEY", "STRIPE_API_KEY"),
        description="Stripe secret key (sk_live_..., sk_test_...). Also read from "
        "STRIPE_API_KEY. Never logged. Prefer stripe_api_key_file.",
    )
    stripe_api_key_file: Path | None = Field(
        None,
        description="A file holding the Stripe secret key (a Docker or Kubernetes secret, "
        "e.g. /run/secrets/stripe_api_key); used when stripe_api_key is not set.",
    )
    stripe_api_base: str = Field(
        "https://api.stripe.com",
        pattern=r"^https?://",
        description="Stripe API base URL: the real API, or an emulator such as localstripe.",
    )

    def secret_key(self) -> str | None:
        """The Stripe secret key, from the setting or its file; read at the entry point."""
        if self.stripe_api_key is not None:
            return self.stripe_api_key.get_secret_value()
        if self.stripe_api_key_file is not None:
            return read_secret_file(self.stripe_api_key_file, "PAYMQ_STRIPE_API_KEY_FILE")
        return None

"""Providers built from settings: routes, breakers, the Stripe key, and configuration errors
that stop a process at start-up instead of at its first payment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from common.clock import FixedClock
from common.errors import ConfigurationError, ProviderUnavailable
from common.settings import Settings
from workers.providers.registry import build_providers


def settings(**changes: Any) -> Settings:
    return Settings(_env_file=None, **changes)


def test_the_default_routes_use_the_sandbox_alone() -> None:
    providers = build_providers(settings(), FixedClock(0))
    try:
        assert providers.card_route().names == ("sandbox",)
        assert providers.payout_route().names == ("sandbox",)
        assert set(providers.breakers) == {"sandbox"}
    finally:
        providers.close()


def test_a_card_route_through_stripe_then_the_sandbox_shares_one_breaker_per_provider() -> None:
    configured = settings(
        card_providers=("stripe", "sandbox"), stripe_api_key=SecretStr("sk_test_x")
    )
    providers = build_providers(configured, FixedClock(0))
    try:
        assert providers.card_route().names == ("stripe", "sandbox")
        assert providers.card_route().primary == "stripe"
        assert set(providers.breakers) == {"stripe", "sandbox"}
    finally:
        providers.close()


def test_stripe_without_a_key_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="API key"):
        build_providers(settings(card_providers=("stripe",)), FixedClock(0))


def test_the_stripe_key_is_read_from_its_file(tmp_path: Path) -> None:
    key_file = tmp_path / "stripe_api_key"
    key_file.write_text("sk_test_from_file\n")
    assert settings(stripe_api_key_file=key_file).stripe.secret_key() == "sk_test_from_file"


def test_a_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PAYMQ_STRIPE_API_KEY_FILE"):
        settings(stripe_api_key_file=tmp_path / "absent").stripe.secret_key()


def test_the_key_setting_wins_over_the_file_and_is_never_shown(tmp_path: Path) -> None:
    key_file = tmp_path / "stripe_api_key"
    key_file.write_text("sk_test_from_file")
    configured = settings(stripe_api_key=SecretStr("sk_test_direct"), stripe_api_key_file=key_file)
    assert configured.stripe.secret_key() == "sk_test_direct"
    assert "sk_test_direct" not in repr(configured)
    assert "sk_test_direct" not in str(configured.model_dump())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"card_providers": ("paypal",)}, "unknown provider 'paypal'"),
        ({"payout_providers": ("stripe",)}, "cannot serve the digital_currency channel"),
    ],
)
def test_a_route_naming_what_cannot_serve_it_refuses_to_start(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_providers(settings(**changes), FixedClock(0))


def test_a_lookup_for_a_provider_no_longer_configured_cannot_tell() -> None:
    providers = build_providers(settings(), FixedClock(0))
    try:
        with pytest.raises(ProviderUnavailable) as raised:
            providers.lookup("card", "payment-1", "stripe")
        assert raised.value.code == "provider_not_configured"
    finally:
        providers.close()

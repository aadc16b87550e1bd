"""The configured providers: built once from settings at the entry point, each with its circuit
breaker, arranged into one route per channel, and asked by name when a payment is looked up.

Adding a provider: its adapter module beside this one, and one entry in `_BUILDERS`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from common.clock import Clock, SystemClock
from common.errors import ConfigurationError, ProviderUnavailable
from common.metrics import Metrics
from common.settings import Settings
from workers.crashpoints import crash_points
from workers.providers.base import CardProvider, PaymentLookup, PayoutProvider, ProviderReceipt
from workers.providers.breaker import CircuitBreaker
from workers.providers.route import Route
from workers.providers.sandbox import SandboxProvider
from workers.providers.timing import timed_call

if TYPE_CHECKING:
    from workers.providers.ethereum import EthereumProvider
    from workers.providers.stripe_card import StripeProvider

logger = logging.getLogger("paymq.providers")


def _sandbox(settings: Settings) -> SandboxProvider:
    return SandboxProvider(
        settings.sandbox.provider_url,
        connect_timeout_s=settings.providers.provider_connect_timeout_s,
        read_timeout_s=settings.providers.provider_read_timeout_s,
    )


def _stripe(settings: Settings) -> StripeProvider:
    # Imported only when a route names Stripe: the SDK costs a worker 0.3 s and ~30 MB.
    from workers.providers.stripe_card import StripeProvider  # noqa: PLC0415

    api_key = settings.stripe.secret_key()
    if api_key is None:
        raise ConfigurationError(
            "the stripe provider needs an API key: set PAYMQ_STRIPE_API_KEY, or "
            "PAYMQ_STRIPE_API_KEY_FILE to a file holding it"
        )
    return StripeProvider(
        api_key,
        api_base=settings.stripe.stripe_api_base,
        connect_timeout_s=settings.providers.provider_connect_timeout_s,
        read_timeout_s=settings.providers.provider_read_timeout_s,
    )


def _ethereum(settings: Settings) -> EthereumProvider:
    # Imported only when a route names it: web3 costs a worker 1.1 s at start. One of its
    # dependencies (py_ecc) raises the whole process's recursion limit to 100,000 on import,
    # where deep recursion would overflow the C stack instead of raising; it is put back.
    recursion_limit = sys.getrecursionlimit()
    from workers.providers.ethereum import EthereumConfig, EthereumProvider  # noqa: PLC0415

    sys.setrecursionlimit(recursion_limit)
    from store.chain import ChainTransactions  # noqa: PLC0415
    from store.database import engine_for  # noqa: PLC0415

    private_key = settings.ethereum.wallet_key()
    if private_key is None:
        raise ConfigurationError(
            "the ethereum provider needs the hot wallet's key: set PAYMQ_ETHEREUM_PRIVATE_KEY, "
            "or PAYMQ_ETHEREUM_PRIVATE_KEY_FILE to a file holding it"
        )
    config = EthereumConfig(
        rpc_url=settings.ethereum.ethereum_rpc_url,
        private_key=private_key,
        network=settings.ethereum.ethereum_network,
        chain_id=settings.ethereum.expected_chain_id(),
        confirmations=settings.ethereum.ethereum_confirmations,
        max_fee_per_gas_wei=settings.ethereum.ethereum_max_fee_per_gas_wei,
        max_priority_fee_per_gas_wei=settings.ethereum.ethereum_max_priority_fee_per_gas_wei,
        rpc_timeout_s=settings.ethereum.ethereum_rpc_timeout_s,
        tokens=settings.ethereum.ethereum_tokens,
    )
    return EthereumProvider(
        config,
        ChainTransactions(engine_for(settings.store, pool_size=2), SystemClock()),
        crash=crash_points(settings.faults),
    )


_BUILDERS: dict[str, Callable[[Settings], Any]] = {
    "sandbox": _sandbox,
    "stripe": _stripe,
    "ethereum": _ethereum,
}
#: Which providers can serve which channel.
_SERVES = {
    "card": frozenset({"sandbox", "stripe"}),
    "digital_currency": frozenset({"sandbox", "ethereum"}),
}


@dataclass
class Providers:
    by_name: Mapping[str, Any]
    routes: Mapping[str, tuple[str, ...]]
    breakers: Mapping[str, CircuitBreaker]
    metrics: Metrics = field(default_factory=Metrics)

    def card_route(self) -> Route[CardProvider]:
        return cast(Route[CardProvider], self._route("card"))

    def payout_route(self) -> Route[PayoutProvider]:
        return cast(Route[PayoutProvider], self._route("digital_currency"))

    def _route(self, channel: str) -> Route[Any]:
        names = self.routes[channel]
        providers = [self.by_name[name] for name in names]
        return Route(channel, providers, self.breakers, self.metrics)

    def lookup(self, channel: str, reference: str, provider: str | None) -> ProviderReceipt | None:
        """Ask the provider the payment was sent to; a payment stored before providers were
        recorded asks each provider of its channel's route, in order."""
        names = (provider,) if provider is not None else self.routes[channel]
        for name in names:
            adapter = self.by_name.get(name)
            if adapter is None:
                raise ProviderUnavailable(
                    f"payment was sent to provider {name!r}, which is not configured",
                    code="provider_not_configured",
                )
            with timed_call(self.metrics, name, "lookup"):
                receipt = cast(PaymentLookup, adapter).lookup(channel, reference)
            if receipt is not None:
                return receipt
        return None

    def cancel(self, channel: str, provider_reference: str, provider: str | None) -> None:
        """Cancel a payment that waits for its payer, at the provider that has it."""
        adapter = self.by_name.get(provider or "")
        canceller = getattr(adapter, "cancel", None)
        if canceller is None:
            raise ProviderUnavailable(
                f"provider {provider!r} cannot cancel a payment", code="cancel_unsupported"
            )
        with timed_call(self.metrics, str(provider), "cancel"):
            canceller(channel, provider_reference)

    def close(self) -> None:
        for adapter in self.by_name.values():
            adapter.close()


def build_providers(settings: Settings, clock: Clock, metrics: Metrics | None = None) -> Providers:
    """Every provider the routes name, built once; raises ConfigurationError early."""
    routes = {
        "card": settings.providers.card_providers,
        "digital_currency": settings.providers.payout_providers,
    }
    for channel, names in routes.items():
        for name in names:
            if name not in _BUILDERS:
                raise ConfigurationError(
                    f"unknown provider {name!r} for {channel}; known: {', '.join(_BUILDERS)}"
                )
            if name not in _SERVES[channel]:
                raise ConfigurationError(f"provider {name!r} cannot serve the {channel} channel")
    needed = dict.fromkeys(name for names in routes.values() for name in names)
    by_name = {name: _BUILDERS[name](settings) for name in needed}
    breakers = {
        name: CircuitBreaker(
            name,
            clock,
            failures_to_open=settings.providers.breaker_failures,
            open_ms=int(settings.providers.breaker_open_s * 1000),
        )
        for name in needed
    }
    logger.info("providers: %s", ", ".join(f"{c} -> {' > '.join(n)}" for c, n in routes.items()))
    return Providers(
        by_name=by_name, routes=routes, breakers=breakers, metrics=metrics or Metrics()
    )

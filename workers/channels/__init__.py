"""The channel registry: the one place a new channel is registered.

Adding a channel: its details model in common/details.py, a module here implementing
`PaymentChannel`, and one entry in `REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from workers.channels.base import PaymentChannel
from workers.channels.card import CardChannel
from workers.channels.digital_currency import DigitalCurrencyChannel
from workers.providers.base import CardProvider, PayoutProvider
from workers.providers.route import Route


@dataclass(frozen=True)
class ChannelDeps:
    card_route: Route[CardProvider]
    payout_route: Route[PayoutProvider]
    sealing_keys: Mapping[str, X25519PrivateKey] = field(default_factory=dict)


REGISTRY: dict[str, Callable[[ChannelDeps], PaymentChannel]] = {
    "card": lambda deps: CardChannel(deps.card_route, deps.sealing_keys),
    "digital_currency": lambda deps: DigitalCurrencyChannel(deps.payout_route),
}


def build_channel(name: str, deps: ChannelDeps) -> PaymentChannel:
    try:
        return REGISTRY[name](deps)
    except KeyError as exc:
        raise ValueError(f"unknown channel {name!r}; known: {', '.join(REGISTRY)}") from exc

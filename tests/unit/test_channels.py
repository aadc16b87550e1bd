"""The channel registry and the digital-currency channel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.details import DigitalCurrencyDetails
from common.errors import MalformedMessage
from common.money import Money
from tests.unit.conftest import route_of, unbound
from workers.channels import REGISTRY, ChannelDeps, build_channel
from workers.channels.base import ExecutionContext
from workers.channels.card import CardChannel
from workers.channels.digital_currency import DigitalCurrencyChannel
from workers.providers.base import Payout, ProviderReceipt

ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


class FakePayoutProvider:
    name = "fake-payouts"

    def __init__(self) -> None:
        self.payouts: list[tuple[Payout, str]] = []

    def payout(self, payout: Payout, *, idempotency_key: str) -> ProviderReceipt:
        self.payouts.append((payout, idempotency_key))
        return ProviderReceipt(provider=self.name, reference="0xhash", settled=False)


def test_every_channel_name_builds_a_channel_of_that_name(fake_card_provider: Any):
    deps = ChannelDeps(
        card_route=route_of("card", fake_card_provider),
        payout_route=route_of("digital_currency", FakePayoutProvider()),
    )
    built = {name: build_channel(name, deps) for name in REGISTRY}
    assert {name: channel.name for name, channel in built.items()} == {
        "card": "card",
        "digital_currency": "digital_currency",
    }
    assert isinstance(built["card"], CardChannel)
    assert isinstance(built["digital_currency"], DigitalCurrencyChannel)


def test_an_unknown_channel_name_is_refused(fake_card_provider: Any):
    deps = ChannelDeps(
        card_route=route_of("card", fake_card_provider),
        payout_route=route_of("digital_currency", FakePayoutProvider()),
    )
    with pytest.raises(ValueError, match="unknown channel 'wire'"):
        build_channel("wire", deps)


def test_a_payout_passes_amount_network_asset_and_address_with_the_idempotency_key(
    make_request: Callable[..., Any],
):
    provider = FakePayoutProvider()
    request, _ = make_request(
        amount=Money(amount_minor=10**17, currency="USDC"),
        card_token=None,
        payout=DigitalCurrencyDetails(
            network="ethereum-sepolia", asset="USDC", destination_address=ADDRESS
        ),
    )
    context = ExecutionContext(idempotency_key="paymq_abc", signed_prefix=b"", binding=unbound())
    receipt = DigitalCurrencyChannel(route_of("digital_currency", provider)).execute(
        request, context
    )
    assert receipt.settled is False
    assert provider.payouts == [
        (
            Payout(
                reference=str(request.payment_id),
                amount=Money(amount_minor=10**17, currency="USDC"),
                network="ethereum-sepolia",
                asset="USDC",
                destination_address=ADDRESS,
            ),
            "paymq_abc",
        )
    ]


def test_the_digital_currency_channel_refuses_card_details(make_request: Callable[..., Any]):
    provider = FakePayoutProvider()
    request, _ = make_request()
    context = ExecutionContext(idempotency_key="k", signed_prefix=b"", binding=unbound())
    with pytest.raises(MalformedMessage, match="sent to the digital currency channel"):
        DigitalCurrencyChannel(route_of("digital_currency", provider)).execute(request, context)
    assert provider.payouts == []


def test_a_pending_payout_gets_a_pending_result(
    make_request: Callable[..., Any], make_worker: Callable[[Any], Any]
):
    worker = make_worker(DigitalCurrencyChannel(route_of("digital_currency", FakePayoutProvider())))
    _, message = make_request(
        amount=Money(amount_minor=10**18, currency="ETH"),
        card_token=None,
        payout=DigitalCurrencyDetails(network="ethereum", asset="ETH", destination_address=ADDRESS),
    )
    handled = worker.handle(message)
    assert handled.status == "pending"
    assert handled.events[0].routing_key == "digital_currency.pending"
    assert handled.result.provider_reference == "0xhash"

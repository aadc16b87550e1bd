"""Payment orders (`paymq publish`): each network of the contract is accepted."""

from __future__ import annotations

import pytest

from common.details import EVM_CHAIN_IDS
from producer.orders import PaymentOrder

ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.mark.parametrize("network", sorted(EVM_CHAIN_IDS))
def test_a_payout_order_names_any_network_of_the_contract(network: str) -> None:
    order = PaymentOrder.model_validate(
        {
            "channel": "digital_currency",
            "amount": "0.05",
            "currency": "ETH",
            "network": network,
            "destination_address": ADDRESS,
            "merchant_reference": "payout-1",
        }
    )
    draft = order.draft()
    assert draft.payout is not None
    assert draft.payout.network == network
    assert draft.amount.amount_minor == 5 * 10**16

"""The digital-currency channel on a real chain, end to end: signed requests through the broker,
the production worker paying out on anvil, and the reconciler completing payouts once their
transactions have the configured confirmations."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from common.details import DigitalCurrencyDetails
from common.money import Money
from common.settings import Settings
from common.subscriber import ResultStream
from paymq_tools.devchain import Anvil
from producer.encode import Draft
from producer.producer import Producer
from store.database import engine_for
from store.views import PaymentViews
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import collect_results, reconciling, wait_until
from tests.integration.rpcproxy import RpcProxy

pytestmark = pytest.mark.integration

CONFIRMATIONS = 3


@pytest.fixture
def wallet(anvil: Anvil) -> LocalAccount:
    account: LocalAccount = Account.create()
    anvil.fund(account.address, 100 * 10**18)
    return account


def on_chain(settings: Settings, rpc_url: str, wallet: LocalAccount, **extra: object) -> Settings:
    return settings.replace(
        **{
            "payout_providers": ("ethereum",),
            "ethereum_rpc_url": rpc_url,
            "ethereum_private_key": SecretStr("0x" + bytes(wallet.key).hex()),
            "ethereum_confirmations": CONFIRMATIONS,
            **extra,
        }
    )


def payout_draft(amount_eth: str) -> Draft:
    reference = f"payout-{uuid.uuid4().hex[:8]}"
    return Draft(
        amount=Money.from_major(amount_eth, "ETH"),
        merchant_reference=reference,
        idempotency_key=reference,
        payout=DigitalCurrencyDetails(
            network="ethereum-devnet", asset="ETH", destination_address=Account.create().address
        ),
    )


def test_payouts_are_pending_then_succeeded_after_their_confirmations(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    anvil: Anvil,
    wallet: LocalAccount,
) -> None:
    anvil.automine(False)
    settings = on_chain(topology, anvil.url, wallet)
    start_worker("digital_currency", settings=settings)
    drafts = [payout_draft(amount) for amount in ("0.25", "1.5", "0.000000000000000001")]
    for draft in drafts:
        producer.publish(producer.prepare(draft)[1])

    pending = collect_results(results, 3, timeout_s=30, terminal_only=False)
    assert {r.status for r in pending} == {"pending"}
    assert {r.provider for r in pending} == {"ethereum"}
    anvil.mine(1)  # all three in one block: 1 confirmation of 3
    views = PaymentViews(engine_for(settings.store))
    with reconciling(settings):
        wait_until(
            lambda: all(views.get(str(r.payment_id))["checks"] >= 1 for r in pending),  # type: ignore[index]
            what="a reconciler check of every payout",
        )
        assert {views.get(str(r.payment_id))["state"] for r in pending} == {"pending"}  # type: ignore[index]
        anvil.mine(CONFIRMATIONS - 1)
        settled = collect_results(results, 3, timeout_s=30)
    views.engine.dispose()

    assert {r.status for r in settled} == {"succeeded"}
    by_payment = {r.payment_id: r for r in settled}
    for before in pending:
        assert before.payment_id is not None
        assert by_payment[before.payment_id].provider_reference == before.provider_reference
    for draft in drafts:
        assert draft.payout is not None
        assert anvil.balance(draft.payout.destination_address) == draft.amount.amount_minor
    assert anvil.nonce(wallet.address) == 3


def test_an_in_doubt_payout_is_broadcast_again_by_the_reconciler_and_lands_once(
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    producer: Producer,
    results: ResultStream,
    anvil: Anvil,
    wallet: LocalAccount,
) -> None:
    draft = payout_draft("0.75")
    assert draft.payout is not None
    # Given a node that never receives the worker's broadcasts, and one attempt per payment
    with RpcProxy(anvil.url, "eth_sendRawTransaction").running() as proxy:
        proxy.mode = "refuse"
        start_worker(
            "digital_currency", settings=on_chain(topology, proxy.url, wallet, max_attempts=1)
        )
        producer.publish(producer.prepare(draft)[1])
        # When the worker gives up with a signed transaction nobody has seen
        [in_doubt] = collect_results(results, 1, timeout_s=30, terminal_only=False)
    assert (in_doubt.status, in_doubt.code) == ("in_doubt", "transaction_not_accepted")
    assert anvil.balance(draft.payout.destination_address) == 0

    # Then the reconciler broadcasts the stored transaction, and completes the payout
    with reconciling(on_chain(topology, anvil.url, wallet)):
        [pending] = collect_results(results, 1, timeout_s=30, terminal_only=False)
        wait_until(lambda: anvil.nonce(wallet.address) == 1, what="the payout mined")
        anvil.mine(CONFIRMATIONS - 1)
        [settled] = collect_results(results, 1, timeout_s=30)
    assert pending.status == "pending"
    assert settled.status == "succeeded"
    assert settled.provider_reference == pending.provider_reference
    assert anvil.balance(draft.payout.destination_address) == draft.amount.amount_minor
    assert len(anvil.transactions_from(wallet.address)) == 1

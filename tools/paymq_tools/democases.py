"""The demo's batch: realistic payments, each with the result it must get. Pure construction."""

from __future__ import annotations

import dataclasses
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_utils.address import to_checksum_address

from common.details import DigitalCurrencyDetails
from common.envelope import OutboundMessage
from common.money import Money
from common.sealing import CardData
from common.signing import Signer
from common.topology import Topology
from producer.encode import Draft, SealingKey, encode_request

_MINUTE_MS = 60_000
#: On chain, a contract that refuses every transfer lives here (the demo installs its code).
REFUSING_CONTRACT = to_checksum_address("0x" + "0" * 36 + "c0de")
#: Its runtime code: PUSH1 0 PUSH1 0 REVERT.
REFUSING_CODE = "0x60006000fd"


@dataclass(frozen=True)
class Fault:
    """A sandbox fault rule aimed at this case's payment."""

    action: str
    times: int = 1
    retry_after_s: int = 1


@dataclass(frozen=True)
class Case:
    name: str
    channel: str
    message: OutboundMessage
    payment_id: str | None
    expect_status: str
    expect_code: str | None = None
    #: Provider effects the sandbox ledger must show for this payment (0 or 1).
    expect_effects: int = 0
    fault: Fault | None = None
    #: The provider that must have taken the payment, where routing decides it.
    expect_provider: str | None = None
    #: An on-chain payout: (destination address, amount in minor units, asset), whose balance
    #: tells how many times it was paid.
    payout_to: tuple[str, int, str] | None = None


@dataclass(frozen=True)
class CaseKit:
    signer: Signer
    topology: Topology
    sealing_key: SealingKey
    now_ms: int
    ttl_ms: int = 60 * _MINUTE_MS


def _card(number: str, cvc: str = "123") -> CardData:
    return CardData(number=number, exp_month=12, exp_year=2030, cvc=cvc)


def _fresh_address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def _address(rng: random.Random) -> str:
    return to_checksum_address("0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40)))


def _make(
    kit: CaseKit, draft: Draft, *, signer: Signer | None = None, age_ms: int = 0
) -> OutboundMessage:
    created = kit.now_ms - age_ms
    _, message = encode_request(
        draft,
        signer=signer or kit.signer,
        topology=kit.topology,
        created_at_ms=created,
        expires_at_ms=created + (kit.ttl_ms if age_ms == 0 else age_ms // 2),
        sealing_key=kit.sealing_key,
    )
    return message


def _draft(amount: str, currency: str, **source: object) -> Draft:
    reference = f"demo-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money.from_major(amount, currency),
        merchant_reference=reference,
        idempotency_key=reference,
        metadata={"source": "paymq demo"},
        **source,  # type: ignore[arg-type]
    )


def build_cases(
    kit: CaseKit,
    *,
    seed: int = 7,
    stripe: bool = False,
    chain: bool = False,
    chain_tokens: tuple[str, ...] = (),
) -> list[Case]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    cases: list[Case] = []

    def add(
        name: str,
        draft: Draft,
        status: str,
        code: str | None = None,
        *,
        effects: int = 0,
        fault: Fault | None = None,
        provider: str | None = None,
    ) -> None:
        payout = draft.payout
        cases.append(
            Case(
                name,
                draft.channel,
                _make(kit, draft),
                str(draft.payment_id),
                status,
                code,
                effects,
                fault,
                provider,
                (payout.destination_address, draft.amount.amount_minor, payout.asset)
                if chain and payout
                else None,
            )
        )

    # Card successes: tokens and sealed card numbers, in currencies with 0, 2 and 3 decimals.
    for amount, currency in [
        ("19.99", "USD"),
        ("250.00", "EUR"),
        ("1200", "JPY"),
        ("7.350", "BHD"),
        ("42.10", "GBP"),
        ("5.00", "CHF"),
    ]:
        add(
            f"card token {currency}",
            _draft(amount, currency, card_token="tok_visa"),
            "succeeded",
            effects=1,
        )
    for number in ("4242424242424242", "5555555555554444", "4000056655665556"):
        add(
            f"sealed card …{number[-4:]}",
            _draft("33.00", "USD", card=_card(number)),
            "succeeded",
            effects=1,
        )
    # Declines are final: no retry, no money moved.
    add(
        "insufficient funds",
        _draft("500.00", "USD", card_token="tok_insufficient_funds"),
        "declined",
        "insufficient_funds",
    )
    add(
        "do not honor (sealed)",
        _draft("75.00", "EUR", card=_card("4000000000000002")),
        "declined",
        "do_not_honor",
    )
    add(
        "expired card",
        _draft("12.00", "USD", card_token="tok_expired_card"),
        "declined",
        "expired_card",
    )
    # Transient trouble: retried through the delay queues with the same idempotency key.
    add(
        "processing error, retries exhausted",
        _draft("9.99", "USD", card_token="tok_processing_error"),
        "failed",
        "processing_error",
    )
    add(
        "provider 500 twice, then success",
        _draft("60.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_before_effect", times=2),
    )
    add(
        "500 after the charge (in doubt), retried",
        _draft("80.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect"),
    )
    add(
        "connection reset after the charge",
        _draft("81.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("reset_after_effect"),
    )
    add(
        "500 after every charge: found on retry",
        _draft("82.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect", times=20),
    )
    add(
        "rate limited (429), then success",
        _draft("15.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("rate_limit", retry_after_s=1),
    )
    if stripe:
        _stripe_cases(add)
    if chain:
        _chain_cases(add, chain_tokens)
    else:
        _sandbox_payout_cases(add, rng)
    cases.extend(_bad_messages(kit, rng))
    return cases


def _chain_cases(add: Callable[..., None], tokens: tuple[str, ...]) -> None:
    """Payouts on a real chain: pending until confirmed, then succeeded. Destinations are new
    accounts every run, so their balances count the transfers (on a chain that persists)."""
    amounts = [("0.05", "ETH"), ("1.5", "ETH"), ("0.000000000000000001", "ETH")]
    amounts += [("250.00", "USDC")] if "USDC" in tokens else []
    for amount, asset in amounts:
        payout = DigitalCurrencyDetails(
            network="ethereum-devnet", asset=asset, destination_address=_fresh_address()
        )
        add(
            f"on-chain payout {amount} {asset}",
            _draft(amount, asset, payout=payout),
            "succeeded",
            effects=1,
            provider="ethereum",
        )
    refusing = DigitalCurrencyDetails(
        network="ethereum-devnet", asset="ETH", destination_address=REFUSING_CONTRACT
    )
    add(
        "on-chain payout to a contract that refuses ETH",
        _draft("0.30", "ETH", payout=refusing),
        "failed",
        "destination_refuses_transfer",
    )


def _sandbox_payout_cases(add: Callable[..., None], rng: random.Random) -> None:
    for amount, asset in [("0.05", "ETH"), ("1.5", "ETH"), ("250.00", "USDC")]:
        payout = DigitalCurrencyDetails(
            network="ethereum",
            asset=asset,
            destination_address=_address(rng),
        )
        add(f"payout {asset}", _draft(amount, asset, payout=payout), "succeeded", effects=1)
    confirming = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x000000000000000000000000000000000000bEEF",
    )
    add(
        "payout pending confirmations, settled",
        _draft("0.20", "ETH", payout=confirming),
        "succeeded",
        effects=1,
    )
    blocked = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address="0x000000000000000000000000000000000000dEaD",
    )
    add(
        "payout to a blocked address",
        _draft("0.10", "ETH", payout=blocked),
        "declined",
        "address_blocked",
    )


def _stripe_cases(add: Callable[..., None]) -> None:
    """With the card route sandbox > stripe: Stripe's own tokens, and failover only when the
    sandbox surely did not act (a 429), never after it may have (a 500 after the charge)."""
    add(
        "Stripe: payment method token",
        _draft("18.00", "EUR", card_token="pm_card_visa"),
        "succeeded",
        provider="stripe",
    )
    add(
        "Stripe: card declined on charge",
        _draft("18.50", "EUR", card_token="pm_card_chargeCustomerFail"),
        "declined",
        "card_declined",
        provider="stripe",
    )
    add(
        "sandbox 429: failover to Stripe",
        _draft("44.00", "EUR", card=_card("4242424242424242")),
        "succeeded",
        fault=Fault("rate_limit", retry_after_s=30),
        provider="stripe",
    )
    add(
        "sandbox 500 after charge: no failover",
        _draft("45.00", "EUR", card=_card("4242424242424242")),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect"),
        provider="sandbox",
    )
    add(
        "Stripe 3-D Secure: payer must act",
        _draft("46.00", "EUR", card=_card("4000002760003184")),
        "pending",
        "requires_action",
        fault=Fault("rate_limit", retry_after_s=30),
        provider="stripe",
    )


def _bad_messages(kit: CaseKit, rng: random.Random) -> list[Case]:
    """Messages that must never reach a provider: each gets rejected or expired, and is
    dead-lettered with its reason."""
    intruder_key = Ed25519PrivateKey.generate()
    impostor = Signer(kit.signer.key_id, intruder_key)  # claims the real producer's key id
    stranger = Signer("intruder-1", intruder_key)  # a key id nobody trusts
    out: list[Case] = []

    def bad(name: str, message: OutboundMessage, channel: str, status: str, code: str) -> None:
        out.append(Case(name, channel, message, None, status, code))

    bad(
        "forged signature",
        _make(kit, _draft("999.00", "USD", card_token="tok_visa"), signer=impostor),
        "card",
        "rejected",
        "signature_invalid",
    )
    bad(
        "unknown signing key",
        _make(kit, _draft("999.00", "USD", card_token="tok_visa"), signer=stranger),
        "card",
        "rejected",
        "unknown_key",
    )
    genuine = _make(kit, _draft("10.00", "USD", card_token="tok_visa"))
    tampered = dataclasses.replace(
        genuine, body=genuine.body.replace(b'"amount_minor":1000', b'"amount_minor":9000')
    )
    bad("tampered amount", tampered, "card", "rejected", "signature_invalid")
    expired = _make(kit, _draft("20.00", "USD", card_token="tok_visa"), age_ms=20 * _MINUTE_MS)
    out.append(Case("expired before execution", "card", expired, None, "expired", "expired"))
    payout = DigitalCurrencyDetails(
        network="ethereum",
        asset="ETH",
        destination_address=_address(rng),
    )
    signed_for_crypto = _make(kit, _draft("0.01", "ETH", payout=payout))
    misrouted = dataclasses.replace(signed_for_crypto, routing_key="card")
    bad("sent to the wrong channel", misrouted, "card", "rejected", "wrong_channel")
    return out

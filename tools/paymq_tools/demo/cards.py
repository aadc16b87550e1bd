"""The demo's card payments: tokens and sealed card numbers that succeed, declines, transient
provider trouble retried through the delay queues, and with Stripe in the route, failover.
"""

from __future__ import annotations

from collections.abc import Callable

from paymq_tools.demo.cases import Fault, card_data, demo_draft


def card_cases(add: Callable[..., None]) -> None:
    """Through the sandbox: successes in currencies with 0, 2 and 3 decimals, declines, and
    transient trouble retried with the same idempotency key."""
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
            demo_draft(amount, currency, card_token="tok_visa"),
            "succeeded",
            effects=1,
        )
    for number in ("4242424242424242", "5555555555554444", "4000056655665556"):
        add(
            f"sealed card …{number[-4:]}",
            demo_draft("33.00", "USD", card=card_data(number)),
            "succeeded",
            effects=1,
        )
    # Declines are final: no retry, no money moved.
    add(
        "insufficient funds",
        demo_draft("500.00", "USD", card_token="tok_insufficient_funds"),
        "declined",
        "insufficient_funds",
    )
    add(
        "do not honor (sealed)",
        demo_draft("75.00", "EUR", card=card_data("4000000000000002")),
        "declined",
        "do_not_honor",
    )
    add(
        "expired card",
        demo_draft("12.00", "USD", card_token="tok_expired_card"),
        "declined",
        "expired_card",
    )
    # Transient trouble: retried through the delay queues with the same idempotency key.
    add(
        "processing error, retries exhausted",
        demo_draft("9.99", "USD", card_token="tok_processing_error"),
        "failed",
        "processing_error",
    )
    add(
        "provider 500 twice, then success",
        demo_draft("60.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_before_effect", times=2),
    )
    add(
        "500 after the charge (in doubt), retried",
        demo_draft("80.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect"),
    )
    add(
        "connection reset after the charge",
        demo_draft("81.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("reset_after_effect"),
    )
    add(
        "500 after every charge: found on retry",
        demo_draft("82.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect", times=20),
    )
    add(
        "rate limited (429), then success",
        demo_draft("15.00", "USD", card_token="tok_visa"),
        "succeeded",
        effects=1,
        fault=Fault("rate_limit", retry_after_s=1),
    )


def stripe_cases(add: Callable[..., None]) -> None:
    """With the card route sandbox > stripe: Stripe's own tokens, and failover only when the
    sandbox surely did not act (a 429), never after it may have (a 500 after the charge)."""
    add(
        "Stripe: payment method token",
        demo_draft("18.00", "EUR", card_token="pm_card_visa"),
        "succeeded",
        provider="stripe",
    )
    add(
        "Stripe: card declined on charge",
        demo_draft("18.50", "EUR", card_token="pm_card_chargeCustomerFail"),
        "declined",
        "card_declined",
        provider="stripe",
    )
    add(
        "sandbox 429: failover to Stripe",
        demo_draft("44.00", "EUR", card=card_data("4242424242424242")),
        "succeeded",
        fault=Fault("rate_limit", retry_after_s=30),
        provider="stripe",
    )
    add(
        "sandbox 500 after charge: no failover",
        demo_draft("45.00", "EUR", card=card_data("4242424242424242")),
        "succeeded",
        effects=1,
        fault=Fault("error_after_effect"),
        provider="sandbox",
    )
    add(
        "Stripe 3-D Secure: payer must act",
        demo_draft("46.00", "EUR", card=card_data("4000002760003184")),
        "pending",
        "requires_action",
        fault=Fault("rate_limit", retry_after_s=30),
        provider="stripe",
    )

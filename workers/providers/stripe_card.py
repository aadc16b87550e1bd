"""Card payments through Stripe's PaymentIntents API, with the official `stripe` package.

- One `StripeClient` per provider: API base configurable (a real account, or localstripe), the
  SDK's own network retries off (paymq's retry policy decides, with the same key), connect and
  read timeouts set, TLS verified.
- A charge creates and confirms a PaymentIntent in one call, with the payment's idempotency key
  and our payment id in its metadata (how the reconciler finds it again). Card data, unsealed
  only inside the worker, first becomes a PaymentMethod (no money moves there); a provider token
  must be a Stripe PaymentMethod id (`pm_...`).
- Answers and errors mean what stripe_outcomes.py says.
"""

from __future__ import annotations

from typing import Any

import stripe

from common.errors import OutcomeUnknown, ProviderUnavailable
from workers.providers.base import CardCharge, ProviderReceipt
from workers.providers.stripe_outcomes import (
    NAME,
    REFERENCE_KEY,
    found,
    receipt_of,
    stripe_errors,
)

#: Stripe PaymentMethod ids: the only tokens this provider can charge.
TOKEN_PREFIX = "pm_"  # noqa: S105 - a prefix of card tokens, no secret


class StripeProvider:
    name = NAME

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self._http = stripe.RequestsClient(timeout=(connect_timeout_s, read_timeout_s))
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=0,
            http_client=self._http,
        )

    def accepts(self, charge: CardCharge) -> bool:
        return charge.card is not None or (charge.token or "").startswith(TOKEN_PREFIX)

    def charge(self, charge: CardCharge, *, idempotency_key: str) -> ProviderReceipt:
        payment_method, last4 = self._payment_method(charge, idempotency_key)
        params: Any = {
            "amount": charge.amount.amount_minor,
            "currency": charge.amount.currency.lower(),
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {**charge.metadata, REFERENCE_KEY: charge.reference},
        }
        with stripe_errors():
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return receipt_of(intent.to_dict(), card_last4=last4)

    def lookup(self, channel: str, reference: str) -> ProviderReceipt | None:
        """The PaymentIntent carrying our payment id, by the Search API. Stripe's search is
        eventually consistent (seconds, up to a minute): "not found" soon after a call only
        means "not yet", which is why the reconciler asks again on a schedule."""
        if channel != "card":
            raise ValueError(f"Stripe has no {channel} payments")
        query = f"metadata['{REFERENCE_KEY}']:'{_quoted(reference)}'"
        with stripe_errors():
            answer = self._client.v1.payment_intents.search(params={"query": query, "limit": 10})
        return found([intent.to_dict() for intent in answer.data])

    def cancel(self, channel: str, provider_reference: str) -> None:
        """Cancel a PaymentIntent that waits for its payer; Stripe refuses (a ProviderRejected)
        once the payer has completed it."""
        if channel != "card":
            raise ValueError(f"Stripe has no {channel} payments")
        with stripe_errors():
            self._client.v1.payment_intents.cancel(provider_reference)

    def _payment_method(self, charge: CardCharge, idempotency_key: str) -> tuple[str, str | None]:
        if charge.card is None:
            return str(charge.token), None
        card = charge.card
        details: Any = {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
        }
        if card.cvc is not None:
            details["cvc"] = card.cvc
        try:
            with stripe_errors():
                method = self._client.v1.payment_methods.create(
                    params={"type": "card", "card": details},
                    options={"idempotency_key": f"{idempotency_key}:pm"},
                )
        except OutcomeUnknown as exc:
            # Creating a PaymentMethod moves no money: whatever happened, nothing was paid.
            raise ProviderUnavailable(f"card not registered at Stripe: {exc.reason}") from exc
        method_id = method.to_dict().get("id")
        if not method_id:
            raise ProviderUnavailable("Stripe answered a PaymentMethod without an id")
        return str(method_id), card.number[-4:]

    def close(self) -> None:
        self._http.close()  # type: ignore[no-untyped-call]


def _quoted(value: str) -> str:
    """Search query strings are single-quoted; our references are UUIDs, but never trust it."""
    return value.replace("\\", "\\\\").replace("'", "\\'")

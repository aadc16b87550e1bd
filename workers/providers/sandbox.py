"""The sandbox provider over HTTP (docs/sandbox.md).

No retries here: the worker's retry policy, with the same idempotency key, decides.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

from common.errors import (
    OutcomeUnknown,
    PaymentDeclined,
    ProviderRejected,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from workers.providers.base import CardCharge, Payout, ProviderReceipt
from workers.providers.http import HttpTransport

NAME = "sandbox"
#: The sandbox's own card tokens; a token another provider issued means nothing here.
TOKEN_PREFIX = "tok_"  # noqa: S105 - a prefix of card tokens, no secret


class SandboxProvider:
    """Card charges and digital-currency payouts against `paymq sandbox`."""

    name = NAME

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self._transport = HttpTransport(
            base_url, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s
        )

    def accepts(self, charge: CardCharge) -> bool:
        return charge.card is not None or (charge.token or "").startswith(TOKEN_PREFIX)

    def charge(self, charge: CardCharge, *, idempotency_key: str) -> ProviderReceipt:
        source: dict[str, Any]
        if charge.card is not None:
            card = charge.card
            source = {
                "type": "card",
                "number": card.number,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            }
            if card.cvc is not None:
                source["cvc"] = card.cvc
        else:
            source = {"type": "token", "token": charge.token}
        body = {
            "reference": charge.reference,
            "amount_minor": charge.amount.amount_minor,
            "currency": charge.amount.currency,
            "source": source,
            "metadata": dict(charge.metadata),
        }
        answer = self._post("/v1/charges", body, idempotency_key)
        return ProviderReceipt(
            provider=NAME, reference=str(answer["id"]), card_last4=answer.get("last4")
        )

    def payout(self, payout: Payout, *, idempotency_key: str) -> ProviderReceipt:
        body = {
            "reference": payout.reference,
            "network": payout.network,
            "asset": payout.asset,
            "amount_minor": str(payout.amount.amount_minor),
            "destination_address": payout.destination_address,
        }
        return _payout_receipt(self._post("/v1/payouts", body, idempotency_key))

    def lookup(self, channel: str, reference: str) -> ProviderReceipt | None:
        path = "/v1/charges" if channel == "card" else "/v1/payouts"
        response = self._transport.get(f"{path}?{urlencode({'reference': reference})}")
        found = interpret(response.status, response.body, response.retry_after)
        data = found.get("data")
        if not isinstance(data, list) or not data:
            return None
        record = data[0]
        if channel == "card":
            return ProviderReceipt(NAME, str(record["id"]), card_last4=record.get("last4"))
        return _payout_receipt(record)

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        response = self._transport.post(
            path,
            json.dumps(body, separators=(",", ":")).encode(),
            {"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        )
        return interpret(response.status, response.body, response.retry_after)

    def close(self) -> None:
        self._transport.close()


def _payout_receipt(answer: dict[str, Any]) -> ProviderReceipt:
    # A transfer waiting for confirmations is accepted but not settled: pending.
    return ProviderReceipt(
        provider=NAME,
        reference=str(answer.get("tx_hash") or answer["id"]),
        settled=answer.get("status") != "pending",
    )


def _error_fields(data: bytes) -> tuple[str, str, str | None]:
    try:
        error = json.loads(data)["error"]
        decline_code = error.get("decline_code")
        return (
            str(error.get("code")),
            str(error.get("message", "")),
            None if decline_code is None else str(decline_code),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return "unknown", "", None


def interpret(status: int, data: bytes, retry_after: str | None) -> dict[str, Any]:
    if status in (200, 201, 202):
        try:
            answer = json.loads(data)
        except ValueError as exc:
            # The provider acted but we cannot read how: that is an unknown outcome.
            raise ProviderServerError("provider answered success with an unreadable body") from exc
        if not isinstance(answer, dict) or not ("id" in answer or "data" in answer):
            raise ProviderServerError("provider answered success without an id")
        return answer
    code, message, decline_code = _error_fields(data)
    if status == 402:
        raise PaymentDeclined(message or "declined", code=decline_code or code, provider=NAME)
    if status == 429:
        raise RateLimited("provider rate limit", retry_after_s=_seconds(retry_after))
    if status == 503 and code == "processing_error":
        # Documented by the sandbox as refused before any effect: safe to retry, then fail.
        raise ProviderUnavailable("provider processing error (no effect)", code=code)
    if status == 409:
        raise OutcomeUnknown("the provider is still processing this key", code=code)
    if status >= 500:
        raise ProviderServerError(f"provider answered {status} ({code})")
    if 400 <= status < 500:
        raise ProviderRejected(f"provider refused the request: {status} {code}", code=code)
    # 3xx, 1xx and anything else unexpected: we cannot tell whether money moved. (A 202 is an
    # answer with a body, read above: the sandbox's payout accepted and under way.)
    raise ProviderServerError(f"provider answered an unexpected {status}")


def _seconds(value: str | None) -> float:
    """Retry-After in seconds; an HTTP date or garbage counts as 1 s, infinity as very long
    (the retry policy caps every wait)."""
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        return 1.0
    return 1.0 if math.isnan(seconds) else max(0.0, seconds)

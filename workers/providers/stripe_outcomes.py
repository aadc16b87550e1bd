"""What Stripe's answers mean for a payment. Pure: plain dicts and exceptions in, our receipts
and errors out.

A PaymentIntent created with `confirm=true` ends its request in one of these states:

    succeeded                 money moved                         -> receipt, settled
    processing                accepted, settles later             -> receipt, pending
    requires_capture          authorised, not captured            -> receipt, pending
    requires_action           the payer must authenticate (3DS)   -> receipt, pending + action
    requires_payment_method   the card was declined               -> PaymentDeclined
    canceled                  given up (e.g. never authenticated) -> PaymentDeclined
    requires_confirmation     never confirmed: no money moved     -> receipt, pending (asked again)

Errors, by what they say about the money (RELIABILITY.md, outcomes of a provider call):

    CardError 402                        declined                -> PaymentDeclined
    RateLimitError 429                   not now                 -> RateLimited
    AuthenticationError, PermissionError refused before acting   -> ProviderUnavailable
    InvalidRequestError 4xx              refused as invalid      -> ProviderRejected
    IdempotencyError, 409, 5xx, other    may have acted          -> ProviderServerError
    APIConnectionError                   by its cause:
        refused, DNS, TLS, connect timeout   surely not sent     -> ProviderUnavailable
        read timeout                         may have acted      -> ProviderTimeout
        reset or closed after sending        may have acted      -> ProviderConnectionLost

The SDK's errors are translated here only (`stripe_errors`, by `error_of`), each keeping
Stripe's error as its cause; requests' error, when there is one, is Stripe's own cause.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests
import stripe
import urllib3.exceptions

from common.errors import (
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    ProviderConnectionLost,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from common.models import PayerAction
from workers.providers.base import ProviderReceipt

logger = logging.getLogger("paymq.stripe")

NAME = "stripe"
#: The metadata key that carries our payment id: what the reconciler searches for.
REFERENCE_KEY = "paymq_payment_id"

_PENDING = frozenset({"processing", "requires_capture", "requires_action", "requires_confirmation"})
# When one reference finds several PaymentIntents, the one that says most about the money; a
# status this code does not know outranks a decline (never guess that money did not move).
_RANK = {"succeeded": 0, "processing": 1, "requires_capture": 1, "requires_action": 2}
_DECLINED_RANK = {"requires_payment_method": 9, "canceled": 9}
_UNKNOWN_RANK = 5


def receipt_of(intent: Mapping[str, Any], card_last4: str | None = None) -> ProviderReceipt:
    """The receipt a PaymentIntent stands for, or the PaymentDeclined it stands for."""
    status = str(intent.get("status"))
    if not intent.get("id"):
        raise ProviderServerError(f"Stripe answered a PaymentIntent without an id ({status})")
    reference = str(intent["id"])
    last4 = card_last4 or _card_last4(intent)
    if status == "succeeded":
        return ProviderReceipt(NAME, reference, settled=True, card_last4=last4)
    if status in _PENDING:
        action = _action(intent) if status == "requires_action" else None
        return ProviderReceipt(NAME, reference, settled=False, card_last4=last4, action=action)
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or "payment_failed"
        raise PaymentDeclined(
            str(error.get("message") or "the card was declined"),
            code=str(code),
            provider_reference=reference,
            provider=NAME,
        )
    if status == "canceled":
        reason = intent.get("cancellation_reason") or "canceled"
        raise PaymentDeclined(
            f"the payment was canceled at the provider ({reason})",
            code="canceled",
            provider_reference=reference,
            provider=NAME,
        )
    # A status this code does not know: never guess that money did not move.
    raise ProviderServerError(f"Stripe answered a PaymentIntent in status {status!r}")


def found(intents: Sequence[Mapping[str, Any]]) -> ProviderReceipt | None:
    """The lookup's answer from every PaymentIntent carrying our reference."""
    if not intents:
        return None
    succeeded = [intent for intent in intents if intent.get("status") == "succeeded"]
    if len(succeeded) > 1:
        logger.error(
            "payment %s has %d succeeded PaymentIntents at Stripe: %s",
            intents[0].get("metadata", {}).get(REFERENCE_KEY),
            len(succeeded),
            ", ".join(str(intent["id"]) for intent in succeeded),
        )
    best = min(intents, key=_rank)
    return receipt_of(best)


def _rank(intent: Mapping[str, Any]) -> int:
    status = str(intent.get("status"))
    return _RANK.get(status, _DECLINED_RANK.get(status, _UNKNOWN_RANK))


@contextlib.contextmanager
def stripe_errors() -> Iterator[None]:
    """Translate what the SDK raises in the block (see `error_of`), keeping it as the cause."""
    try:
        yield
    except stripe.StripeError as exc:
        raise error_of(exc) from exc


def error_of(exc: stripe.StripeError) -> PaymqError:  # noqa: PLR0911 - a row of the table each
    """Our error for a Stripe SDK error (the SDK's own retries are off: this is the first)."""
    status = exc.http_status
    code = exc.code
    if isinstance(exc, stripe.CardError):
        error = exc.error
        decline_code = getattr(error, "decline_code", None) if error is not None else None
        intent = getattr(error, "payment_intent", None) if error is not None else None
        return PaymentDeclined(
            exc.user_message or "the card was declined",
            code=str(decline_code or code or "card_declined"),
            provider_reference=str(intent["id"]) if intent else None,
            provider=NAME,
        )
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited("Stripe rate limit", retry_after_s=_retry_after_s(exc))
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderUnavailable(
            f"Stripe refused the API key ({status})", code="provider_auth_failed"
        )
    if isinstance(exc, stripe.APIConnectionError):
        return _connection_error(exc)
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderServerError("Stripe saw this idempotency key with other parameters")
    if isinstance(exc, stripe.InvalidRequestError) and status is not None and status < 500:
        return ProviderRejected(
            f"Stripe refused the request: {status} {code or ''}".rstrip(),
            code=str(code or "invalid_request"),
        )
    return ProviderServerError(f"Stripe answered {status} ({code or type(exc).__name__})")


def _connection_error(exc: stripe.APIConnectionError) -> PaymqError:
    cause = exc.__cause__
    if isinstance(cause, requests.ConnectTimeout | requests.exceptions.SSLError):
        return ProviderUnavailable(f"could not connect to Stripe: {type(cause).__name__}")
    if isinstance(cause, requests.ReadTimeout) or _timed_out_reading(cause):
        return ProviderTimeout("no answer from Stripe within the read timeout after sending")
    if isinstance(cause, requests.ConnectionError) and _never_connected(cause):
        return ProviderUnavailable("could not connect to Stripe (refused or unresolvable)")
    if isinstance(cause, requests.RequestException):
        return ProviderConnectionLost(f"connection to Stripe broke: {type(cause).__name__}")
    return OutcomeUnknown(f"Stripe call failed: {type(cause).__name__}")


def _never_connected(error: requests.ConnectionError) -> bool:
    """requests wraps a refused connection as ConnectionError(MaxRetryError(reason=
    NewConnectionError)); a reset after sending arrives as ProtocolError instead."""
    inner = error.args[0] if error.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _timed_out_reading(cause: BaseException | None) -> bool:
    """A body that stalls after the headers arrives as ConnectionError(ReadTimeoutError)."""
    inner = cause.args[0] if isinstance(cause, requests.ConnectionError) and cause.args else None
    return isinstance(inner, urllib3.exceptions.ReadTimeoutError)


def _retry_after_s(exc: stripe.StripeError) -> float:
    headers = exc.headers or {}
    try:
        return max(0.0, float(headers.get("Retry-After", headers.get("retry-after", 1))))
    except (TypeError, ValueError):
        return 1.0


def _action(intent: Mapping[str, Any]) -> PayerAction | None:
    next_action = intent.get("next_action") or {}
    redirect = next_action.get("redirect_to_url") or {}
    if next_action.get("type") == "redirect_to_url" and redirect.get("url"):
        return PayerAction(type="redirect", url=str(redirect["url"]))
    if intent.get("client_secret"):
        return PayerAction(type="sdk", client_secret=str(intent["client_secret"]))
    # Still pending, and the reconciler keeps asking; but nobody can tell the payer what to do.
    logger.warning("PaymentIntent %s requires action but names none", intent["id"])
    return None


def _card_last4(intent: Mapping[str, Any]) -> str | None:
    method = intent.get("payment_method")
    card = method.get("card") if isinstance(method, Mapping) else None
    last4 = card.get("last4") if isinstance(card, Mapping) else None
    return str(last4) if last4 else None

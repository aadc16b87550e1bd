"""Webhook signatures: Standard Webhooks (standardwebhooks.com), both sides.

`paymq webhooks run` POSTs each result event to its endpoints with three headers:

    webhook-id         the result's event_id: the same on every attempt, deduplicate on it
    webhook-timestamp  Unix seconds of this attempt
    webhook-signature  v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}" with the secret>

A receiver checks them before it trusts the body (any Standard Webhooks library does the same):

    from common.webhooks import verify_webhook
    from common.errors import WebhookSignatureInvalid

    def on_post(headers, body: bytes) -> int:
        try:
            result = verify_webhook(SECRET, headers, body)   # SECRET = "whsec_..."
        except WebhookSignatureInvalid:
            return 400                                       # never act on it
        if already_seen(headers["webhook-id"]):
            return 200                                       # a retry of one we have
        record(result)                                       # a verified PaymentResult
        return 200

Verification takes the clock and the tolerance as arguments: the library's own `verify` reads the
wall clock and fixes the tolerance at five minutes, so only its `sign` is used here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError
from standardwebhooks import Webhook

from common.errors import ConfigurationError, MalformedMessage, WebhookSignatureInvalid
from common.models import PaymentResult
from common.strictjson import check_strict_json

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the scheme gives secrets, not one
#: The scheme's default: a receiver refuses a webhook signed longer ago (or ahead) than this.
DEFAULT_TOLERANCE_S = 300

_SECRET_BYTES = 32
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def new_webhook_secret() -> str:
    """A fresh endpoint secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def sign_webhook(secret: str, event_id: str, body: bytes, timestamp_s: int) -> dict[str, str]:
    """The three signature headers of one attempt to deliver `body`."""
    moment = datetime.fromtimestamp(timestamp_s, UTC)
    signature = _webhook(secret).sign(event_id, moment, _text(body))
    return {HEADER_ID: event_id, HEADER_TIMESTAMP: str(timestamp_s), HEADER_SIGNATURE: signature}


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now_s: int | None = None,
) -> PaymentResult:
    """The verified result event, or WebhookSignatureInvalid saying why not.

    `headers` may use any case. `now_s` defaults to the system clock (tests pass their own).
    A bad `secret` is the receiver's configuration, so it raises ConfigurationError.
    """
    webhook = _webhook(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    event_id, timestamp, signatures = (
        lowered.get(HEADER_ID),
        lowered.get(HEADER_TIMESTAMP),
        lowered.get(HEADER_SIGNATURE),
    )
    if not (event_id and timestamp and signatures):
        raise WebhookSignatureInvalid("a webhook-id, -timestamp or -signature header is missing")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookSignatureInvalid("webhook-timestamp is not Unix seconds")
    now = int(time.time()) if now_s is None else now_s
    if abs(now - int(timestamp)) > tolerance_s:
        raise WebhookSignatureInvalid(
            f"webhook-timestamp is {now - int(timestamp)} s off, more than {tolerance_s} s"
        )
    expected = webhook.sign(event_id, datetime.fromtimestamp(int(timestamp), UTC), _text(body))
    if not any(_matches(expected, candidate) for candidate in signatures.split(" ")):
        raise WebhookSignatureInvalid("no webhook-signature matches the body")
    return _result(body, event_id)


def _matches(expected: str, candidate: str) -> bool:
    version, _, signature = candidate.partition(",")
    if version != "v1":
        return False  # another scheme version: skipped, as the spec says
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(base64.b64decode(expected.partition(",")[2]), given)


def _result(body: bytes, event_id: str) -> PaymentResult:
    try:
        check_strict_json(body)
        result = PaymentResult.model_validate_json(body)
    except (MalformedMessage, ValidationError) as exc:
        # Signed by whoever holds the secret, yet not a result event: refuse it all the same.
        # The reason quotes the error's start only; the error is not kept as the cause, whose
        # text would quote every value it refuses.
        raise WebhookSignatureInvalid(f"signed body is not a result event: {exc!r}"[:200]) from None
    if str(result.event_id) != event_id:
        raise WebhookSignatureInvalid("webhook-id differs from the body's event_id")
    return result


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Not kept as the cause: it holds the whole body it could not decode.
        raise WebhookSignatureInvalid("the body is not UTF-8") from None


def _webhook(secret: str) -> Webhook:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # Not kept as the cause: an error about the secret itself.
        raise ConfigurationError("a webhook secret is whsec_ and base64") from None
    if len(key) < 16:
        raise ConfigurationError("a webhook secret needs at least 16 bytes of key")
    return Webhook(key)

"""Everything a request must pass before anyone may act on it. Pure.

    size, content type -> signature, key, route -> strict JSON -> payload model
    -> details match the signed channel -> body times match the signed header -> clock skew

Any failure raises a MessageRejected subclass: the message is refused, never executed (I3).
Expiry is not checked here: an expired payment still has a stored result to repeat, if any.
"""

from __future__ import annotations

from pydantic import ValidationError

from common.clock import to_ms
from common.envelope import (
    InboundMessage,
    VerifiedMessage,
    open_message,
)
from common.errors import MalformedMessage, PanInClear
from common.keyring import REQUEST_SIGNERS, KeyringSource
from common.models import PaymentRequest
from common.pan import refuse_pans_in_document
from common.redact import problems
from common.signing import REQUEST_TYPE
from common.strictjson import check_strict_json


def validation_reason(exc: ValidationError) -> str:
    # Never echo input values: a misplaced card number must not reach a result or a log.
    errors = exc.errors(include_input=False, include_url=False)
    return "invalid payment request: " + problems(errors, limit=5)


class Checker:
    def __init__(
        self,
        *,
        channel: str,
        keyring: KeyringSource,
        max_body_bytes: int,
        max_clock_skew_ms: int,
    ) -> None:
        self._channel = channel
        self._keyring = keyring
        self._max_body_bytes = max_body_bytes
        self._max_clock_skew_ms = max_clock_skew_ms

    def check(self, message: InboundMessage, now_ms: int) -> tuple[VerifiedMessage, PaymentRequest]:
        if message.card_number_in_message_id:  # masked on receipt (common/amqp/convert.py)
            raise PanInClear(
                "a card number in clear in the message id: message ids are echoed in results, "
                "logs and the store; the request was not taken"
            )
        verified = open_message(
            message,
            self._keyring.current(),
            expected_type=REQUEST_TYPE,
            role=REQUEST_SIGNERS,
            channel=self._channel,
            route=self._channel,
            max_body_bytes=self._max_body_bytes,
        )
        document = check_strict_json(verified.body)
        # Every string, before the schema: a card number in a field the schema would refuse
        # (a spaced one in a token) is refused as what it is, and its dead letter masked.
        refuse_pans_in_document(document)
        try:
            request = PaymentRequest.model_validate_json(verified.body)
        except ValidationError as exc:
            # Not kept as the cause: a validation error quotes the values it refuses.
            raise MalformedMessage(validation_reason(exc)) from None
        fields = verified.fields
        if request.channel != fields.route:
            raise MalformedMessage(f"details are {request.channel!r}, signed for {fields.route!r}")
        if (to_ms(request.created_at), to_ms(request.expires_at)) != (
            fields.created_at_ms,
            fields.expires_at_ms,
        ):
            raise MalformedMessage("body timestamps differ from the signed header")
        if fields.created_at_ms > now_ms + self._max_clock_skew_ms:
            raise MalformedMessage("created in the future beyond the allowed clock skew")
        return verified, request

"""A payment's retry state, carried on its retry copies and signed by the worker that set it.

A retry republishes the producer's exact bytes and signature, plus these headers:

    paymq-attempts          provider attempts made so far
    paymq-outcome-unknown   1 if any attempt may have moved money
    paymq-not-before-ms     no attempt before this instant (a long Retry-After), 0 if none
    paymq-retry-key-id      the worker key that signed the state
    paymq-retry-signature   Ed25519 over "paymq.retry_state.v1\\n<message id>\\n<attempts>\\n
                            <outcome unknown>\\n<not before ms>\\n<producer signature header>"

The state changes what a worker does (how many attempts remain, whether an expired payment is
`expired` or `in_doubt`), so only a worker may set it: a state whose signature does not verify
with an active worker key for the channel is ignored, as if the message were new.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from common.envelope import (
    HEADER_ATTEMPTS,
    HEADER_NOT_BEFORE_MS,
    HEADER_OUTCOME_UNKNOWN,
    HEADER_RETRY_KEY_ID,
    HEADER_RETRY_SIGNATURE,
    HEADER_SIGNATURE,
    HeaderValue,
    InboundMessage,
)
from common.errors import PaymqError
from common.keyring import Keyring, KeyRole
from common.signing import Signer

logger = logging.getLogger("paymq.worker")

CONTEXT = "paymq.retry_state.v1"


@dataclass(frozen=True)
class RetryState:
    attempts: int = 0
    outcome_unknown: bool = False
    not_before_ms: int = 0


NEW = RetryState()


def _signing_input(message_id: str, state: RetryState, producer_signature: str) -> bytes:
    return (
        f"{CONTEXT}\n{message_id}\n{state.attempts}\n{int(state.outcome_unknown)}\n"
        f"{state.not_before_ms}\n{producer_signature}"
    ).encode()


def state_headers(
    message: InboundMessage, state: RetryState, signer: Signer
) -> dict[str, HeaderValue]:
    producer_signature = str(message.headers.get(HEADER_SIGNATURE, ""))
    signature = signer.sign_raw(_signing_input(message.message_id or "", state, producer_signature))
    return {
        HEADER_ATTEMPTS: state.attempts,
        HEADER_OUTCOME_UNKNOWN: int(state.outcome_unknown),
        HEADER_NOT_BEFORE_MS: state.not_before_ms,
        HEADER_RETRY_KEY_ID: signer.key_id,
        HEADER_RETRY_SIGNATURE: base64.b64encode(signature).decode("ascii"),
    }


def read_state(message: InboundMessage, keyring: Keyring, channel: str) -> RetryState:
    """The message's retry state if a worker signed it; NEW otherwise."""
    headers = message.headers
    if HEADER_RETRY_SIGNATURE not in headers:
        return NEW
    values = [
        headers.get(h) for h in (HEADER_ATTEMPTS, HEADER_OUTCOME_UNKNOWN, HEADER_NOT_BEFORE_MS)
    ]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        logger.warning("message %s: malformed retry state ignored", message.message_id)
        return NEW
    attempts, unknown, not_before_ms = (int(v) for v in values)  # type: ignore[call-overload]
    state = RetryState(attempts, bool(unknown), not_before_ms)
    key_id = str(headers.get(HEADER_RETRY_KEY_ID, ""))
    try:
        keyring.authorize(key_id, role=KeyRole.WORKER, channel=channel)
        signature = base64.b64decode(str(headers[HEADER_RETRY_SIGNATURE]), validate=True)
        producer_signature = str(headers.get(HEADER_SIGNATURE, ""))
        keyring.verification_key(key_id).verify(
            signature, _signing_input(message.message_id or "", state, producer_signature)
        )
    except (PaymqError, InvalidSignature, binascii.Error, ValueError):
        logger.warning(
            "message %s: retry state not signed by a worker; ignored", message.message_id
        )
        return NEW
    return state

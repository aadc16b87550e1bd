"""Retries, in one place: what to do after a failed provider attempt, the copy that goes
through a retry tier, and the retry state that copy carries.

**The decision** (pure): retry after a delay, or give up.

Delays come from fixed tiers (one delay queue each): attempt n waits tier n, and every later
attempt the last tier, which makes the back-off exponential when the tiers are, and capped.
A 429 waits at least as long as the provider asked: the next tier at or above the wait, and
when the wait is longer than the last tier, the message cycles through the last tier until its
not-before time (see the state, below). Waits are capped at MAX_WAIT_MS.

**The state**: a payment's retry state, carried on its retry copies and signed by the worker
that set it.

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
from collections.abc import Mapping
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
    OutboundMessage,
)
from common.errors import OutcomeUnknown, PaymqError, RateLimited, RetryableError
from common.keyring import Keyring, KeyRole
from common.signing import Signer
from common.topology import Topology


@dataclass(frozen=True)
class RetryPolicy:
    delays_ms: tuple[int, ...]
    #: Provider attempts for one payment, the first included.
    max_attempts: int


#: A provider asking for more than a day is treated as asking for a day.
MAX_WAIT_MS = 86_400_000


@dataclass(frozen=True)
class Retry:
    #: The retry tier to go through.
    delay_ms: int
    #: How long to wait before the next attempt; more than `delay_ms` only for long Retry-After.
    wait_ms: int


@dataclass(frozen=True)
class GiveUp:
    #: True when the last error left the outcome unknown: the payment is in doubt, not failed.
    in_doubt: bool


def is_transient(error: PaymqError) -> bool:
    return isinstance(error, RetryableError | OutcomeUnknown)


def decide(
    error: PaymqError, attempts_made: int, policy: RetryPolicy, *, earlier_unknown: bool = False
) -> Retry | GiveUp:
    """`attempts_made` counts provider attempts so far, including the one that raised `error`;
    `earlier_unknown` says an earlier attempt's outcome was unknown (it may have moved money,
    so giving up then leaves the payment in doubt even if the last error was a clean refusal)."""
    if not is_transient(error):
        raise ValueError(f"{type(error).__name__} is permanent; nothing to retry")
    if attempts_made >= policy.max_attempts:
        return GiveUp(in_doubt=earlier_unknown or isinstance(error, OutcomeUnknown))
    tiers = policy.delays_ms
    delay_ms = tiers[min(attempts_made - 1, len(tiers) - 1)]
    wait_ms = delay_ms
    if isinstance(error, RateLimited):
        asked_s = error.retry_after_s
        asked_ms = MAX_WAIT_MS if not asked_s < MAX_WAIT_MS / 1000 else int(asked_s * 1000)
        wait_ms = max(asked_ms, delay_ms)
        delay_ms = tier_for(wait_ms, tiers)
    return Retry(delay_ms, wait_ms)


def tier_for(wait_ms: int, tiers: tuple[int, ...]) -> int:
    """The shortest tier that waits at least `wait_ms`, or the longest tier."""
    return next((t for t in tiers if t >= wait_ms), tiers[-1])


def retry_copy(
    message: InboundMessage,
    topology: Topology,
    channel: str,
    delay_ms: int,
    headers: Mapping[str, HeaderValue] | None = None,
) -> OutboundMessage:
    """The same bytes through the retry tier of `delay_ms`, back to the channel's work queue
    when it has waited there; `headers` (a retry state) added to the message's own."""
    return message.resend(topology.retry_exchange(delay_ms), channel, headers or {})


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

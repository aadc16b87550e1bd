"""What the payment store takes and gives: new payments, attempts, outcomes, the stored result
event, refusals, discarded dead letters, and the answers to a claim. Plain frozen values, no
database."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from common.envelope import HEADER_CREATED_AT_MS, OutboundMessage
from store.states import State

T = TypeVar("T")


@dataclass(frozen=True)
class StoredResult:
    """A signed result event exactly as it was first published."""

    exchange: str
    routing_key: str
    message_id: str
    message_type: str
    headers: dict[str, str | int]
    body: bytes

    @classmethod
    def of(cls, message: OutboundMessage) -> StoredResult:
        return cls(
            exchange=message.exchange,
            routing_key=message.routing_key,
            message_id=message.message_id,
            message_type=message.message_type,
            headers=dict(message.headers),
            body=message.body,
        )

    def message(self) -> OutboundMessage:
        created_ms = self.headers.get(HEADER_CREATED_AT_MS)
        return OutboundMessage(
            exchange=self.exchange,
            routing_key=self.routing_key,
            body=self.body,
            message_id=self.message_id,
            message_type=self.message_type,
            headers=self.headers,
            # As sign_message sets it, so the repeated message is the first one in every part.
            timestamp_s=created_ms // 1000 if isinstance(created_ms, int) else None,
        )


@dataclass(frozen=True)
class Rejection:
    """A request refused before any claim (the `rejections` table)."""

    request_message_id: str
    body_sha256: str
    #: Only when the signature was verified.
    payment_id: str | None
    code: str
    reason: str


@dataclass(frozen=True)
class Discard:
    """A dead letter an operator removed for good instead of replaying it (the
    `dead_letter_discards` table): who, when, why, and the message itself, byte for byte."""

    message_id: str
    body_sha256: str
    #: The routing key the message was dead-lettered with: its channel.
    channel: str
    message_type: str
    #: Why it was dead-lettered: the worker's code, or the broker's reason (delivery_limit).
    code: str
    #: The dead-letter reason it carried, card numbers masked.
    dead_letter_reason: str
    #: The operator's reason for discarding it.
    reason: str
    discarded_by: str
    discarded_ms: int
    #: The message's string and integer headers, and its body, as they were in the queue.
    headers: dict[str, str | int]
    body: bytes


@dataclass(frozen=True)
class NewPayment:
    payment_id: str
    scope: str
    idempotency_key: str
    request_hash: str
    request_message_id: str
    channel: str
    merchant_reference: str
    amount_minor: int
    currency: str
    payment_created_ms: int
    #: The provider the payment goes to first (its channel's primary).
    provider: str | None = None


@dataclass(frozen=True)
class StoredPayment:
    """A payment as the store holds it, as far as the reconciler reads it (checks and sweeps)."""

    payment_id: str
    request_message_id: str
    idempotency_key: str
    channel: str
    merchant_reference: str
    amount_minor: int
    currency: str
    payment_created_ms: int
    state: State
    attempts: int
    outcome_unknown: bool
    provider: str | None
    provider_reference: str | None
    #: Checks made so far (the one being made included).
    checks: int
    #: When anyone last moved or touched the payment; a sweep moves it only if unchanged.
    updated_ms: int


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: str
    code: str | None = None
    provider_reference: str | None = None


@dataclass(frozen=True)
class OutcomeRecord:
    """What to record when a payment leaves `processing` (or `retrying`, when expiring)."""

    state: State
    attempts: int
    outcome_unknown: bool
    reason: str | None = None
    code: str | None = None
    provider: str | None = None
    provider_reference: str | None = None
    result: StoredResult | None = None
    next_check_ms: int | None = None


# --- claim answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Acquired:
    """This worker holds the claim; `attempts` were made before.

    `takeovers` counts the times the payment's claim was taken over after its lease ran out,
    this one included: each is a worker that died (or stalled) while it held the payment,
    perhaps mid provider call, so any takeover makes the outcome unknown.
    """

    attempts: int
    outcome_unknown: bool
    takeovers: int = 0
    #: The provider the payment was last sent to (or goes to first); with `outcome_unknown`,
    #: the only one that may be asked again.
    provider: str | None = None
    #: This claim's fencing token: the store moves the payment on only for its current holder.
    token: str = field(default="", compare=False)


@dataclass(frozen=True)
class AlreadyDone:
    state: State
    result: StoredResult


@dataclass(frozen=True)
class Busy:
    """Another worker holds the claim until `until_ms`, and has held it for `held_ms`."""

    until_ms: int
    held_ms: int = 0


@dataclass(frozen=True)
class Conflict:
    """The idempotency key (or payment id) belongs to a different payment."""

    existing_payment_id: str


Claim = Acquired | AlreadyDone | Busy | Conflict


# --- lookups -----------------------------------------------------------------------------------


class LookupBy(StrEnum):
    """What a lookup compares its text with: what the payment's caller knows it by."""

    MERCHANT_REFERENCE = "merchant_reference"
    IDEMPOTENCY_KEY = "idempotency_key"


@dataclass(frozen=True)
class Page(Generic[T]):
    """What a lookup found, newest first, up to its limit."""

    items: tuple[T, ...]
    #: More matched than the limit let through.
    more: bool

    @classmethod
    def of(cls, found: list[T], limit: int) -> Page[T]:
        """From up to limit + 1 rows: the extra one only says there are more."""
        return cls(tuple(found[:limit]), len(found) > limit)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"a lookup's limit must be at least 1, not {limit}")

"""What a fault-injection run observed, as checker.py takes it:

    published payments  (payment id, message id, expected outcome, publish confirmed or not)
    result events       (verified PaymentResult, raw body bytes, event id), every copy received
    provider effects    (the sandbox ledger; `reference` is the payment id)
    dead letters        (message id and why: the worker's code, or the broker's delivery limit)
    leftovers           (message ids still in work or retry queues once the workers stopped)

The checker joins them by payment id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from common.models import PaymentResult

#: The broker's own reason for a message dead-lettered at the queue's delivery limit.
DELIVERY_LIMIT = "delivery_limit"


class Expect(StrEnum):
    """The terminal status a payment was built to reach."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"


@dataclass(frozen=True)
class Published:
    payment_id: str
    message_id: str
    expect: Expect
    #: The broker confirmed at least one publish of the message.
    confirmed: bool


@dataclass(frozen=True)
class ReceivedEvent:
    """One copy of a result event as it arrived; `result` is None when it failed verification."""

    event_id: str
    body: bytes
    result: PaymentResult | None


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str


@dataclass(frozen=True)
class Observations:
    published: Sequence[Published]
    events: Sequence[ReceivedEvent]
    effects: Sequence[Mapping[str, object]]
    dead_letters: Sequence[DeadLetter]
    leftovers: Sequence[str] = ()
    #: A reconciler ran, so nothing may stay pending or in doubt.
    reconciler_ran: bool = False

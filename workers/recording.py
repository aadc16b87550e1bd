"""Recording an outcome: the signed result event and the store's record of it, built in one place.

The worker's handler (dispositions.py) and the reconciler settle payments through `recorded`:
the result event is signed once, and the record the store keeps holds those exact bytes, so a
repeat publishes the same message (I5). Each caller then writes the record under its own hold on
the payment (the worker's claim token, the reconciler's check) and publishes the event only after
the write committed: a result is never published that the store does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.envelope import OutboundMessage
from common.models import PaymentResult
from common.signing import Signer
from common.topology import Topology
from store.records import OutcomeRecord, StoredResult
from store.states import State
from workers.results import sign_result


@dataclass(frozen=True)
class Recorded:
    """A payment's result as it is published and as it is stored."""

    result: PaymentResult
    event: OutboundMessage
    #: The event as the store keeps it (the record's `result`).
    stored: StoredResult
    record: OutcomeRecord

    @property
    def state(self) -> State:
        return self.record.state


def recorded(
    result: PaymentResult,
    *,
    signer: Signer,
    topology: Topology,
    outcome_unknown: bool,
    next_check_ms: int | None,
    provider: str | None = None,
    provider_reference: str | None = None,
) -> Recorded:
    """Sign `result` and build the store's record of it. `provider` and `provider_reference`
    stand in where the result names none (the payment's own, e.g. when the provider's record
    says no money moved). `next_check_ms`: when the reconciler should ask the provider (pending
    and in-doubt payments), else None."""
    event = sign_result(result, signer, topology)
    stored = StoredResult.of(event)
    record = OutcomeRecord(
        state=State(result.status.value),
        attempts=result.attempts,
        outcome_unknown=outcome_unknown,
        reason=result.reason,
        code=result.code,
        provider=result.provider or provider,
        provider_reference=result.provider_reference or provider_reference,
        result=stored,
        next_check_ms=next_check_ms,
    )
    return Recorded(result, event, stored, record)

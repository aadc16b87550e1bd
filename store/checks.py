"""The reconciler's path through the store: which pending and in-doubt payments are due for a
check, one check at a time per payment, the outcome a check finds, and the sweeps of what no
delivery will finish any more (results whose publish was never confirmed, abandoned claims)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from common.clock import Clock
from store import rows
from store.database import reading
from store.health import StoreHealth
from store.outage import StoreAccess
from store.records import OutcomeRecord, StoredPayment, StoredResult
from store.schema import payments
from store.states import State, check_transition

#: A sweep moves a row only if nobody touched it since it was read.
_UPDATE_UNTOUCHED = rows.UPDATE_IN_STATE.where(payments.c.updated_ms == bindparam("b_updated_ms"))


class Checks(StoreAccess):
    def __init__(self, engine: Engine, clock: Clock, *, health: StoreHealth | None = None) -> None:
        super().__init__(engine, health=health)
        self._clock = clock

    def due_for_check(self, limit: int, providers: Collection[str] | None = None) -> list[str]:
        """Pending and in-doubt payments whose next check is due; with `providers`, only those
        sent to one of them (or to no recorded provider): a reconciler that cannot ask a
        provider leaves its payments to one that can, instead of delaying their checks."""
        now_ms = self._clock.now_ms()
        query = (
            select(payments.c.payment_id)
            .where(payments.c.state.in_([State.PENDING.value, State.IN_DOUBT.value]))
            .where(payments.c.next_check_ms <= now_ms)
            .order_by(payments.c.next_check_ms)
            .limit(limit)
        )
        if providers is not None:
            query = query.where(
                payments.c.provider.is_(None) | payments.c.provider.in_(list(providers))
            )
        with reading(self._engine) as connection:
            return [row[0] for row in connection.execute(query)]

    def take_check(self, payment_id: str, hold_ms: int) -> StoredPayment | None:
        """Claim one due check (pushing the next one `hold_ms` away); None if another process
        took it first."""
        now_ms = self._clock.now_ms()
        with self._engine.begin() as connection:
            taken = connection.execute(
                update(payments)
                .where(payments.c.payment_id == payment_id)
                .where(payments.c.next_check_ms <= now_ms)
                .values(next_check_ms=now_ms + hold_ms, checks=payments.c.checks + 1)
            )
            if taken.rowcount != 1:
                return None
            row = rows.read(connection, payment_id)
            return None if row is None else rows.stored_payment(row)

    def finish(self, payment_id: str, outcome: OutcomeRecord) -> None:
        """Record what a check found, with its result event, for a payment nobody holds: moved
        from the state it is in, if the state machine allows it."""
        now_ms = self._clock.now_ms()
        values = rows.outcome_columns(outcome)
        with self._engine.begin() as connection:
            row = rows.read(connection, payment_id)
            if row is None:
                raise LookupError(f"no payment {payment_id} in the store")
            current = State(row["state"])
            check_transition(current, outcome.state)
            connection.execute(
                rows.UPDATE_IN_STATE,
                {
                    "b_payment_id": payment_id,
                    "state": outcome.state.value,
                    "updated_ms": now_ms,
                    "b_state": current.value,
                    **values,
                },
            )
            rows.record_transition(
                connection, payment_id, current, outcome.state, now_ms, reason=outcome.reason
            )

    def reschedule(self, payment_id: str, next_check_ms: int) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(payments)
                .where(payments.c.payment_id == payment_id)
                .values(next_check_ms=next_check_ms, updated_ms=self._clock.now_ms())
            )

    def unpublished_results(self, older_than_ms: int, limit: int) -> list[tuple[str, StoredResult]]:
        """Stored results whose publish the broker has not confirmed for `older_than_ms`:
        whoever stored them crashed, lost its channel, or had its delivery dead-lettered."""
        query = (
            select(payments)
            .where(payments.c.result_unpublished.is_(True))
            .where(payments.c.updated_ms <= self._clock.now_ms() - older_than_ms)
            .order_by(payments.c.updated_ms)
            .limit(limit)
        )
        with reading(self._engine) as connection:
            found = connection.execute(query).mappings()
            return [(row["payment_id"], rows.stored_result(row)) for row in found]

    def mark_published(self, confirmed: Collection[tuple[str, str]]) -> None:
        """The broker confirmed these (payment id, result message id) publishes: one statement
        for the lot (store/rows.py)."""
        if not confirmed:
            return
        with self._engine.begin() as connection:
            rows.mark_published(connection, confirmed)

    def abandoned_claims(self, older_than_ms: int, limit: int) -> list[StoredPayment]:
        """Payments claimed (processing, lease run out, or retrying) that nobody has touched
        for `older_than_ms`: no delivery carries them any more (dead-lettered or lost), or
        none has reached a worker for that long."""
        now_ms = self._clock.now_ms()
        query = (
            select(payments)
            .where(payments.c.state.in_([State.PROCESSING.value, State.RETRYING.value]))
            .where(payments.c.updated_ms <= now_ms - older_than_ms)
            .where(payments.c.claim_until_ms.is_(None) | (payments.c.claim_until_ms <= now_ms))
            .order_by(payments.c.updated_ms)
            .limit(limit)
        )
        with reading(self._engine) as connection:
            return [rows.stored_payment(row) for row in connection.execute(query).mappings()]

    def settle_abandoned(self, payment: StoredPayment, outcome: OutcomeRecord) -> bool:
        """Put an abandoned claim in `outcome` (in doubt, with its result), unless someone
        touched the payment since it was read; True if it moved."""
        now_ms = self._clock.now_ms()
        current = payment.state
        check_transition(current, outcome.state)
        result = outcome.result
        values: dict[str, Any] = {
            "state": outcome.state.value,
            "outcome_unknown": outcome.outcome_unknown,
            "code": outcome.code,
            "claim_owner": None,
            "claim_until_ms": None,
            "claim_token": None,
            "next_check_ms": outcome.next_check_ms,
            "result_unpublished": result is not None,
            "updated_ms": now_ms,
            **(rows.result_columns(result) if result is not None else {}),
        }
        with self._engine.begin() as connection:
            moved = connection.execute(
                _UPDATE_UNTOUCHED,
                {
                    "b_payment_id": payment.payment_id,
                    "b_state": current.value,
                    "b_updated_ms": payment.updated_ms,
                    **values,
                },
            )
            if moved.rowcount != 1:
                return False
            rows.record_transition(
                connection,
                payment.payment_id,
                current,
                outcome.state,
                now_ms,
                reason=outcome.reason,
            )
            return True

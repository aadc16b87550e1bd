"""Payment rows: the statements and steps that claims, checks and views share. Each step runs
on the connection of its caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from store.records import Attempt, OutcomeRecord, StoredPayment, StoredResult
from store.schema import payments, transitions
from store.states import State

# The hot path's statements, built once: SQLAlchemy then reuses their compiled form, where
# building `.values(...)` per call costs more than the database work itself.
_INSERT_TRANSITION = insert(transitions)
_SELECT_PAYMENT = select(payments).where(payments.c.payment_id == bindparam("b_payment_id"))
UPDATE_IN_STATE = (
    update(payments)
    .where(payments.c.payment_id == bindparam("b_payment_id"))
    .where(payments.c.state == bindparam("b_state"))
)


def read(connection: Connection, payment_id: str) -> RowMapping | None:
    return connection.execute(_SELECT_PAYMENT, {"b_payment_id": payment_id}).mappings().first()


def transition_row(
    payment_id: str, source: State, target: State, now_ms: int, reason: str | None = None
) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "at_ms": now_ms,
        "from_state": source.value,
        "to_state": target.value,
        "reason": reason[:500] if reason else None,
    }


def record_transition(
    connection: Connection,
    payment_id: str,
    source: State,
    target: State,
    now_ms: int,
    *,
    reason: str | None = None,
) -> None:
    connection.execute(
        _INSERT_TRANSITION, transition_row(payment_id, source, target, now_ms, reason)
    )


def attempt_row(payment_id: str, attempt: Attempt, now_ms: int) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "attempt": attempt.number,
        "at_ms": now_ms,
        "outcome": attempt.outcome,
        "code": attempt.code,
        "provider_reference": attempt.provider_reference,
    }


def outcome_columns(outcome: OutcomeRecord) -> dict[str, Any]:
    """The columns an outcome sets when a payment leaves `processing` (or a check settles it).
    A stored result stays marked unpublished until `mark_published` says the broker confirmed
    it."""
    result = outcome.result
    values: dict[str, Any] = {
        "attempts": outcome.attempts,
        "outcome_unknown": outcome.outcome_unknown,
        "code": outcome.code,
        "provider_reference": outcome.provider_reference,
        "claim_owner": None,
        "claim_until_ms": None,
        "claim_token": None,
        "next_check_ms": outcome.next_check_ms,
        "result_unpublished": result is not None,
    }
    if outcome.provider is not None:  # else keep the one the payment was bound to
        values["provider"] = outcome.provider
    if result is not None:
        values |= result_columns(result)
    return values


def mark_published(connection: Connection, confirmed: Collection[tuple[str, str]]) -> None:
    """The broker confirmed these (payment id, result message id) publishes: one statement
    for the lot. A result stored since (the reconciler settled the payment meanwhile) keeps
    its mark: only the very result that was confirmed is cleared."""
    payment_ids = sorted({payment_id for payment_id, _ in confirmed})
    message_ids = sorted({message_id for _, message_id in confirmed})
    connection.execute(
        update(payments)
        .where(payments.c.payment_id.in_(payment_ids))
        .where(payments.c.result_message_id.in_(message_ids))
        .where(payments.c.result_unpublished.is_(True))
        .values(result_unpublished=False)
    )


def result_columns(result: StoredResult) -> dict[str, Any]:
    return {
        "result_exchange": result.exchange,
        "result_routing_key": result.routing_key,
        "result_message_id": result.message_id,
        "result_type": result.message_type,
        "result_headers": json.dumps(result.headers, sort_keys=True),
        "result_body": result.body,
    }


def stored_payment(row: RowMapping) -> StoredPayment:
    return StoredPayment(
        payment_id=row["payment_id"],
        request_message_id=row["request_message_id"],
        idempotency_key=row["idempotency_key"],
        channel=row["channel"],
        merchant_reference=row["merchant_reference"],
        amount_minor=int(row["amount_minor"]),
        currency=row["currency"],
        payment_created_ms=int(row["payment_created_ms"]),
        state=State(row["state"]),
        attempts=int(row["attempts"]),
        outcome_unknown=bool(row["outcome_unknown"]),
        provider=row["provider"],
        provider_reference=row["provider_reference"],
        checks=int(row["checks"]),
        updated_ms=int(row["updated_ms"]),
    )


def stored_result(row: RowMapping) -> StoredResult:
    return StoredResult(
        exchange=row["result_exchange"],
        routing_key=row["result_routing_key"],
        message_id=row["result_message_id"],
        message_type=row["result_type"],
        headers=json.loads(row["result_headers"]),
        body=bytes(row["result_body"]),
    )


def result_of(row: RowMapping | None) -> tuple[State, StoredResult] | None:
    """The payment's state and stored result event, if it has one."""
    if row is None or row["result_body"] is None or not State(row["state"]).has_result:
        return None
    return State(row["state"]), stored_result(row)

"""A payment as people and API callers see it: state, history, provider attempts and the
signed result event, from the store, with any card number masked (common/redact.py)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select

from common.clock import from_ms
from common.redact import mask_pans
from store.outage import unavailable_as_retryable
from store.payments import PaymentStore
from store.schema import payments
from store.states import State


def _when(ms: int | None) -> str:
    return "-" if ms is None else f"{from_ms(ms):%Y-%m-%d %H:%M:%S.%f}"[:-3]


def describe_payment(store: PaymentStore, payment_id: str) -> dict[str, Any] | None:
    row = store.get(payment_id)
    if row is None:
        return None
    transitions, attempts = store.history(payment_id)
    result = bytes(row["result_body"]).decode() if row["result_body"] is not None else None
    return {
        "payment_id": row["payment_id"],
        "state": row["state"],
        "channel": row["channel"],
        "amount_minor": row["amount_minor"],
        "currency": row["currency"],
        "merchant_reference": mask_pans(row["merchant_reference"]),
        "idempotency_key": row["idempotency_key"],
        "producer": row["scope"],
        "attempts": row["attempts"],
        "outcome_unknown": bool(row["outcome_unknown"]),
        "provider": row["provider"],
        "provider_reference": row["provider_reference"],
        "code": row["code"],
        "next_check": _when(row["next_check_ms"]) if row["next_check_ms"] else None,
        "history": [
            {
                "at": _when(t["at_ms"]),
                "from": t["from_state"],
                "to": t["to_state"],
                "reason": mask_pans(t["reason"]) if t["reason"] else None,
            }
            for t in transitions
        ],
        "provider_attempts": [
            {
                "attempt": a["attempt"],
                "at": _when(a["at_ms"]),
                "outcome": a["outcome"],
                "code": a["code"],
                "provider_reference": a["provider_reference"],
            }
            for a in attempts
        ],
        "result_event": json.loads(mask_pans(result)) if result else None,
    }


def store_overview(engine: Engine, *, now_ms: int, limit: int = 10) -> dict[str, Any]:
    """Payments by state, and the oldest in-doubt ones (what `paymq top` shows)."""
    by_state = select(payments.c.state, func.count()).group_by(payments.c.state)
    in_doubt = (
        select(
            payments.c.payment_id,
            payments.c.channel,
            payments.c.provider,
            payments.c.code,
            payments.c.checks,
            payments.c.updated_ms,
            payments.c.next_check_ms,
        )
        .where(payments.c.state == State.IN_DOUBT.value)
        .order_by(payments.c.updated_ms)
        .limit(limit)
    )
    with unavailable_as_retryable(), engine.connect() as connection:
        states = {str(state): int(count) for state, count in connection.execute(by_state)}
        doubtful = [
            {
                "payment_id": row["payment_id"],
                "channel": row["channel"],
                "provider": row["provider"],
                "code": row["code"],
                "checks": int(row["checks"]),
                "in_doubt_for_s": round((now_ms - int(row["updated_ms"])) / 1000, 1),
                "next_check_in_s": None
                if row["next_check_ms"] is None
                else round((int(row["next_check_ms"]) - now_ms) / 1000, 1),
            }
            for row in connection.execute(in_doubt).mappings()
        ]
    return {"states": states, "in_doubt": doubtful}

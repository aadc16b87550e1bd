"""A payment as people and API callers see it: state, history, provider attempts and the
signed result event, from the store, with any card number masked (common/redact.py). Read
only: what `paymq status` and `paymq top` show, and what the HTTP API answers."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.engine import RowMapping

from common.clock import rfc3339
from common.money import Money
from common.redact import mask_pans
from store import rows
from store.database import reading
from store.outage import StoreAccess
from store.records import LookupBy, Page, Rejection, StoredResult, check_limit
from store.schema import api_submissions, attempts, payments, rejections, transitions
from store.states import State


def _amount(row: RowMapping) -> dict[str, Any]:
    """The amount as the contract writes it (common/money.py): a JSON integer of minor units up
    to 2^53 - 1, a string of digits above. The store keeps it as text (amounts reach 10^30)."""
    amount = Money.model_construct(amount_minor=int(row["amount_minor"]), currency=row["currency"])
    return amount.model_dump(mode="json")


class PaymentViews(StoreAccess):
    def get(self, payment_id: str) -> RowMapping | None:
        with reading(self._engine) as connection:
            return rows.read(connection, payment_id)

    def find(self, text: str, by: Collection[LookupBy], *, limit: int) -> Page[str]:
        """The ids of the payments a worker has taken whose merchant reference or idempotency
        key (as `by` says) is `text`, newest first. An idempotency key is the producer's as the
        worker got it (`<api key id>:<Idempotency-Key>` for the HTTP API's), or the
        Idempotency-Key an HTTP caller sent."""
        check_limit(limit)
        if not by:
            raise ValueError("a lookup compares its text with a reference, a key, or both")
        # A union of one indexed search each, not one OR: PostgreSQL reads a whole table for an
        # OR that holds a subquery.
        ids = select(payments.c.payment_id)
        matches = []
        if LookupBy.MERCHANT_REFERENCE in by:
            matches.append(ids.where(payments.c.merchant_reference == text))
        if LookupBy.IDEMPOTENCY_KEY in by:
            matches.append(ids.where(payments.c.idempotency_key == text))
            submitted = select(api_submissions.c.payment_id)
            matches.append(submitted.where(api_submissions.c.idempotency_key == text))
        query = (
            ids.where(payments.c.payment_id.in_(union(*matches)))
            .order_by(payments.c.payment_created_ms.desc(), payments.c.payment_id)
            .limit(limit + 1)
        )
        with reading(self._engine) as connection:
            found = list(connection.execute(query).scalars())
        return Page.of(found, limit)

    def stored_result(self, payment_id: str) -> tuple[State, StoredResult] | None:
        """The payment's state and stored result event, if it has one."""
        return rows.result_of(self.get(payment_id))

    def history(self, payment_id: str) -> tuple[Sequence[RowMapping], Sequence[RowMapping]]:
        """(transitions, attempts) of a payment, oldest first."""
        with reading(self._engine) as connection:
            moves = connection.execute(
                select(transitions)
                .where(transitions.c.payment_id == payment_id)
                .order_by(transitions.c.id)
            )
            tries = connection.execute(
                select(attempts).where(attempts.c.payment_id == payment_id).order_by(attempts.c.id)
            )
            return moves.mappings().all(), tries.mappings().all()

    def rejection_of(self, request_message_id: str, body_sha256: str) -> Rejection | None:
        """The refusal of exactly these bytes under this message id, if a worker refused them
        before any claim."""
        query = select(rejections).where(
            rejections.c.request_message_id == request_message_id,
            rejections.c.body_sha256 == body_sha256,
        )
        with reading(self._engine) as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return Rejection(
            row["request_message_id"],
            row["body_sha256"],
            row["payment_id"],
            row["code"],
            row["reason"],
        )

    def describe(self, payment_id: str) -> dict[str, Any] | None:
        """The payment as `paymq status --json` prints it and the HTTP API answers it (JSON
        ready: the amount as the contract writes it, instants in RFC 3339 UTC); None if no
        worker has taken it."""
        row = self.get(payment_id)
        if row is None:
            return None
        transitions, attempts = self.history(payment_id)
        result = bytes(row["result_body"]).decode() if row["result_body"] is not None else None
        event = json.loads(mask_pans(result)) if result else None
        return {
            "payment_id": row["payment_id"],
            "state": row["state"],
            "channel": row["channel"],
            "amount": _amount(row),
            "merchant_reference": mask_pans(row["merchant_reference"]),
            "idempotency_key": row["idempotency_key"],
            "producer": row["scope"],
            "attempts": row["attempts"],
            "outcome_unknown": bool(row["outcome_unknown"]),
            "provider": row["provider"],
            "provider_reference": row["provider_reference"],
            "code": row["code"],
            # Why, as the result event told subscribers (a refusal, a decline...).
            "reason": event.get("reason") if event else None,
            # The request's created_at: what the payment says, whoever took it when.
            "created_at": rfc3339(row["payment_created_ms"]),
            "updated_at": rfc3339(row["updated_ms"]),
            "next_check": rfc3339(row["next_check_ms"]) if row["next_check_ms"] else None,
            "history": [
                {
                    "at": rfc3339(t["at_ms"]),
                    "from": t["from_state"],
                    "to": t["to_state"],
                    "reason": mask_pans(t["reason"]) if t["reason"] else None,
                }
                for t in transitions
            ],
            "provider_attempts": [
                {
                    "attempt": a["attempt"],
                    "at": rfc3339(a["at_ms"]),
                    "outcome": a["outcome"],
                    "code": a["code"],
                    "provider_reference": a["provider_reference"],
                }
                for a in attempts
            ],
            "result_event": event,
        }

    def overview(self, *, now_ms: int, limit: int = 10) -> dict[str, Any]:
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
        with reading(self._engine) as connection:
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

"""The worker's path through the store: claim a payment, release it to a retry tier, bind it to
a provider, record its outcome, and note refusals made before any claim.

A worker may call the provider for a payment only while it holds the payment's claim. Claims
are rows written atomically (an INSERT, or an UPDATE guarded by the previous state and lease),
so concurrent deliveries of one payment to several workers (redeliveries, duplicate publishes)
never reach the provider twice at once; a claim expires after its lease, so a worker that died
mid-payment does not block it forever. Once a payment has a result, every later delivery
republishes the stored result event, byte for byte (I5), and never calls the provider again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from common.clock import Clock
from common.errors import ClaimLost
from store import rows
from store.health import StoreHealth
from store.outage import StoreAccess
from store.records import (
    Acquired,
    AlreadyDone,
    Attempt,
    Busy,
    Claim,
    Conflict,
    NewPayment,
    OutcomeRecord,
    Rejection,
    StoredResult,
)
from store.schema import payments, rejections, transitions
from store.states import State, check_transition

# The hot path's statements, built once: SQLAlchemy then reuses their compiled form, where
# building `.values(...)` per call costs more than the database work itself.
_INSERT_PAYMENT = insert(payments)
TAKEOVER_REASON = "claim taken over after its lease ran out"
_COUNT_TAKEOVERS = (
    select(func.count())
    .select_from(transitions)
    .where(transitions.c.payment_id == bindparam("b_payment_id"))
    .where(transitions.c.reason == TAKEOVER_REASON)
)
_UPDATE_OWNED = rows.UPDATE_IN_STATE.where(payments.c.claim_token == bindparam("b_token"))
_TAKE_OVER = (
    update(payments)
    .where(payments.c.payment_id == bindparam("b_payment_id"))
    .where(payments.c.state == bindparam("b_state"))
    .where(
        (payments.c.claim_until_ms.is_(None)) | (payments.c.claim_until_ms <= bindparam("b_now"))
    )
)


def _storable(text: str, length: int) -> str:
    return text.replace("\x00", "\ufffd")[:length]


class Claims(StoreAccess):
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        owner: str,
        lease_ms: int,
        health: StoreHealth | None = None,
    ) -> None:
        super().__init__(engine, health=health)
        self._clock = clock
        self._owner = owner
        self._lease_ms = lease_ms

    def claim(self, new: NewPayment) -> Claim:
        """Take the claim on a payment, or say why not (see the Claim classes)."""
        now_ms = self._clock.now_ms()
        token = _new_token()
        try:
            with self._engine.begin() as connection:
                connection.execute(_INSERT_PAYMENT, self._new_row(new, now_ms, token))
                rows.record_transition(
                    connection, new.payment_id, State.RECEIVED, State.PROCESSING, now_ms
                )
            return Acquired(attempts=0, outcome_unknown=False, provider=new.provider, token=token)
        except IntegrityError:
            pass  # the payment, or another with its idempotency key, exists: decide below
        with self._engine.begin() as connection:
            row = self._existing(connection, new)
            if row is None:  # deleted meanwhile; never in practice, but do not guess
                return Busy(until_ms=now_ms)
            return self._claim_existing(connection, new, row, now_ms, token)

    def _claim_existing(
        self, connection: Connection, new: NewPayment, row: RowMapping, now_ms: int, token: str
    ) -> Claim:
        if row["payment_id"] != new.payment_id or row["request_hash"] != new.request_hash:
            return Conflict(existing_payment_id=row["payment_id"])
        state = State(row["state"])
        if state.has_result and row["result_body"] is not None:
            return AlreadyDone(state, rows.stored_result(row))
        claim_until = row["claim_until_ms"] or 0
        if state is State.PROCESSING and claim_until > now_ms:
            return Busy(until_ms=claim_until, held_ms=now_ms - (claim_until - self._lease_ms))
        if state not in (State.PROCESSING, State.RETRYING):
            return Busy(until_ms=now_ms)  # a result is being written; look again shortly
        taken = connection.execute(
            _TAKE_OVER,
            {
                "b_payment_id": new.payment_id,
                "b_state": state.value,
                "b_now": now_ms,
                "state": State.PROCESSING.value,
                "claim_owner": self._owner,
                "claim_until_ms": now_ms + self._lease_ms,
                "claim_token": token,
                "updated_ms": now_ms,
            },
        )
        if taken.rowcount != 1:
            return Busy(until_ms=now_ms + self._lease_ms)
        taken_over = state is State.PROCESSING
        reason = TAKEOVER_REASON if taken_over else None
        rows.record_transition(
            connection, new.payment_id, state, State.PROCESSING, now_ms, reason=reason
        )
        return Acquired(
            attempts=row["attempts"],
            outcome_unknown=bool(row["outcome_unknown"]) or taken_over,
            takeovers=self._takeovers(connection, new.payment_id) if taken_over else 0,
            provider=row["provider"],
            token=token,
        )

    @staticmethod
    def _takeovers(connection: Connection, payment_id: str) -> int:
        counted = connection.execute(_COUNT_TAKEOVERS, {"b_payment_id": payment_id}).scalar()
        return int(counted or 0)

    def retry_later(
        self,
        payment_id: str,
        *,
        token: str,
        attempts: int,
        outcome_unknown: bool,
        attempt: Attempt | None,
    ) -> None:
        """Release the claim: the payment waits in a retry tier. ClaimLost unless `token` is
        the payment's current claim."""
        now_ms = self._clock.now_ms()
        with self._engine.begin() as connection:
            self._move(
                connection,
                payment_id,
                State.RETRYING,
                now_ms,
                token=token,
                attempts=attempts,
                outcome_unknown=outcome_unknown,
                claim_owner=None,
                claim_until_ms=None,
                claim_token=None,
            )
            if attempt is not None:
                rows.record_attempt(connection, payment_id, attempt, now_ms)

    def bind_provider(self, payment_id: str, token: str, provider: str, reason: str) -> None:
        """Record the provider a payment is about to be sent to, before it is sent: a worker
        that dies mid-call leaves its name for the next one. Only for the current claim
        (ClaimLost otherwise)."""
        now_ms = self._clock.now_ms()
        with self._engine.begin() as connection:
            self._move(
                connection,
                payment_id,
                State.PROCESSING,
                now_ms,
                reason,
                token=token,
                provider=provider,
            )

    def finish(
        self, payment_id: str, outcome: OutcomeRecord, attempt: Attempt | None, *, token: str
    ) -> None:
        """Record the outcome, the attempt that led to it and the result event, atomically;
        only for the current claim `token` (ClaimLost otherwise). A stored result stays marked
        unpublished until `mark_published` says the broker confirmed it."""
        now_ms = self._clock.now_ms()
        values = rows.outcome_columns(outcome)
        with self._engine.begin() as connection:
            self._move(
                connection, payment_id, outcome.state, now_ms, outcome.reason, token=token, **values
            )
            if attempt is not None:
                rows.record_attempt(connection, payment_id, attempt, now_ms)

    def mark_published(self, confirmed: Collection[tuple[str, str]]) -> None:
        """The broker confirmed these (payment id, result message id) publishes: one statement
        for the lot (store/rows.py)."""
        if not confirmed:
            return
        with self._engine.begin() as connection:
            rows.mark_published(connection, confirmed)

    def note_rejection(self, rejection: Rejection) -> None:
        """Keep a refusal made before any claim; the same message refused again is a no-op."""
        # Refused messages come from anyone: an id longer than the column, or a NUL (which
        # PostgreSQL text refuses), must not make the note fail for ever and the refusal wait.
        row = {
            "request_message_id": _storable(rejection.request_message_id, 128),
            "body_sha256": rejection.body_sha256,
            "payment_id": rejection.payment_id,
            "code": _storable(rejection.code, 64),
            "reason": _storable(rejection.reason, 500),
            "created_ms": self._clock.now_ms(),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(rejections), row)
        except IntegrityError:
            pass  # refused before, by this or another worker

    def stored_result(self, payment_id: str) -> tuple[State, StoredResult] | None:
        """The payment's state and stored result event, if it has one (a worker whose claim
        was lost publishes it again)."""
        with self._engine.connect() as connection:
            return rows.result_of(rows.read(connection, payment_id))

    def _new_row(self, new: NewPayment, now_ms: int, token: str) -> dict[str, Any]:
        return {
            "payment_id": new.payment_id,
            "scope": new.scope,
            "idempotency_key": new.idempotency_key,
            "request_hash": new.request_hash,
            "request_message_id": new.request_message_id,
            "channel": new.channel,
            "merchant_reference": new.merchant_reference,
            "amount_minor": str(new.amount_minor),
            "currency": new.currency,
            "state": State.PROCESSING.value,
            "attempts": 0,
            "outcome_unknown": False,
            "checks": 0,
            "result_unpublished": False,
            "payment_created_ms": new.payment_created_ms,
            "claim_owner": self._owner,
            "claim_until_ms": now_ms + self._lease_ms,
            "claim_token": token,
            "created_ms": now_ms,
            "updated_ms": now_ms,
            "provider": new.provider,
        }

    @staticmethod
    def _existing(connection: Connection, new: NewPayment) -> RowMapping | None:
        query = select(payments).where(
            (payments.c.payment_id == new.payment_id)
            | (
                (payments.c.scope == new.scope)
                & (payments.c.idempotency_key == new.idempotency_key)
            )
        )
        return connection.execute(query).mappings().first()

    def _move(
        self,
        connection: Connection,
        payment_id: str,
        target: State,
        now_ms: int,
        reason: str | None = None,
        *,
        token: str,
        **values: Any,
    ) -> None:
        # A worker moves only what its claim holds: one guarded UPDATE, no read first.
        changes = {"b_payment_id": payment_id, "state": target.value, "updated_ms": now_ms}
        current = State.PROCESSING
        check_transition(current, target)
        moved = connection.execute(
            _UPDATE_OWNED, {**changes, "b_state": current.value, "b_token": token, **values}
        )
        if moved.rowcount != 1:
            raise ClaimLost(f"payment {payment_id}: this claim is no longer the current one")
        rows.record_transition(connection, payment_id, current, target, now_ms, reason=reason)


def _new_token() -> str:
    return uuid.uuid4().hex

"""The payment store: claims, attempts, outcomes and the stored result event.

A worker may call the provider for a payment only while it holds the payment's claim. Claims
are rows written atomically (an INSERT, or an UPDATE guarded by the previous state and lease),
so concurrent deliveries of one payment to several workers (redeliveries, duplicate publishes)
never reach the provider twice at once; a claim expires after its lease, so a worker that died
mid-payment does not block it forever. Once a payment has a result, every later delivery
republishes the stored result event, byte for byte (I5), and never calls the provider again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError

from common.clock import Clock
from common.envelope import HEADER_CREATED_AT_MS, OutboundMessage
from common.errors import StoreUnavailable
from workers.store.schema import attempts, payments, transitions
from workers.store.states import State, check_transition

# The hot path's statements, built once: SQLAlchemy then reuses their compiled form, where
# building `.values(...)` per call costs more than the database work itself.
_INSERT_PAYMENT = insert(payments)
_INSERT_TRANSITION = insert(transitions)
_INSERT_ATTEMPT = insert(attempts)
TAKEOVER_REASON = "claim taken over after its lease ran out"
_COUNT_TAKEOVERS = (
    select(func.count())
    .select_from(transitions)
    .where(transitions.c.payment_id == bindparam("b_payment_id"))
    .where(transitions.c.reason == TAKEOVER_REASON)
)
_SELECT_PAYMENT = select(payments).where(payments.c.payment_id == bindparam("b_payment_id"))
_UPDATE_IN_STATE = (
    update(payments)
    .where(payments.c.payment_id == bindparam("b_payment_id"))
    .where(payments.c.state == bindparam("b_state"))
)
_UPDATE_OWNED = _UPDATE_IN_STATE.where(payments.c.claim_owner == bindparam("b_owner"))
_TAKE_OVER = (
    update(payments)
    .where(payments.c.payment_id == bindparam("b_payment_id"))
    .where(payments.c.state == bindparam("b_state"))
    .where(
        (payments.c.claim_until_ms.is_(None)) | (payments.c.claim_until_ms <= bindparam("b_now"))
    )
)


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
class Attempt:
    number: int
    outcome: str
    code: str | None = None
    provider_reference: str | None = None


@dataclass(frozen=True)
class Outcome:
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
    #: The caller publishes the result with no redelivery to fall back on (the reconciler):
    #: mark it, until `published()`, so a crash before the confirm is repaired.
    unpublished: bool = False


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


@dataclass(frozen=True)
class AlreadyDone:
    state: State
    result: StoredResult


@dataclass(frozen=True)
class Busy:
    """Another worker holds the claim until `until_ms`."""

    until_ms: int


@dataclass(frozen=True)
class Conflict:
    """The idempotency key (or payment id) belongs to a different payment."""

    existing_payment_id: str


Claim = Acquired | AlreadyDone | Busy | Conflict


class ClaimLost(RuntimeError):
    """This worker's claim ran out and another worker took the payment over."""


@contextlib.contextmanager
def unavailable_as_retryable() -> Iterator[None]:
    """The database's own failures (down, locked too long, connection lost) become one
    retryable error: the message waits in a retry tier, nothing is decided on a guess."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"payment store unavailable: {type(exc.orig).__name__}") from None


class PaymentStore:
    def __init__(self, engine: Engine, clock: Clock, *, owner: str, lease_ms: int) -> None:
        self._engine = engine
        self._clock = clock
        self._owner = owner
        self._lease_ms = lease_ms

    @property
    def engine(self) -> Engine:
        return self._engine

    # --- workers ---------------------------------------------------------------------------

    def claim(self, new: NewPayment) -> Claim:
        """Take the claim on a payment, or say why not (see the Claim classes)."""
        with unavailable_as_retryable():
            return self._claim(new)

    def _claim(self, new: NewPayment) -> Claim:
        now_ms = self._clock.now_ms()
        try:
            with self._engine.begin() as connection:
                connection.execute(_INSERT_PAYMENT, self._new_row(new, now_ms))
                self._history(connection, new.payment_id, State.RECEIVED, State.PROCESSING, now_ms)
            return Acquired(attempts=0, outcome_unknown=False, provider=new.provider)
        except IntegrityError:
            pass  # the payment, or another with its idempotency key, exists: decide below
        with self._engine.begin() as connection:
            row = self._existing(connection, new)
            if row is None:  # deleted meanwhile; never in practice, but do not guess
                return Busy(until_ms=now_ms)
            return self._claim_existing(connection, new, row, now_ms)

    def _claim_existing(
        self, connection: Connection, new: NewPayment, row: RowMapping, now_ms: int
    ) -> Claim:
        if row["payment_id"] != new.payment_id or row["request_hash"] != new.request_hash:
            return Conflict(existing_payment_id=row["payment_id"])
        state = State(row["state"])
        if state.has_result and row["result_body"] is not None:
            return AlreadyDone(state, _stored_result(row))
        claim_until = row["claim_until_ms"] or 0
        if state is State.PROCESSING and claim_until > now_ms:
            return Busy(until_ms=claim_until)
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
                "updated_ms": now_ms,
            },
        )
        if taken.rowcount != 1:
            return Busy(until_ms=now_ms + self._lease_ms)
        taken_over = state is State.PROCESSING
        reason = TAKEOVER_REASON if taken_over else None
        self._history(connection, new.payment_id, state, State.PROCESSING, now_ms, reason=reason)
        return Acquired(
            attempts=row["attempts"],
            outcome_unknown=bool(row["outcome_unknown"]) or taken_over,
            takeovers=self._takeovers(connection, new.payment_id) if taken_over else 0,
            provider=row["provider"],
        )

    @staticmethod
    def _takeovers(connection: Connection, payment_id: str) -> int:
        counted = connection.execute(_COUNT_TAKEOVERS, {"b_payment_id": payment_id}).scalar()
        return int(counted or 0)

    def retry_later(
        self, payment_id: str, *, attempts: int, outcome_unknown: bool, attempt: Attempt | None
    ) -> None:
        """Release the claim: the payment waits in a retry tier."""
        now_ms = self._clock.now_ms()
        with unavailable_as_retryable(), self._engine.begin() as connection:
            self._move(
                connection,
                payment_id,
                State.RETRYING,
                now_ms,
                owned=True,
                attempts=attempts,
                outcome_unknown=outcome_unknown,
                claim_owner=None,
                claim_until_ms=None,
            )
            if attempt is not None:
                self._attempt(connection, payment_id, attempt, now_ms)

    def bind_provider(self, payment_id: str, provider: str, reason: str) -> None:
        """Record the provider a payment is about to be sent to, before it is sent: a worker
        that dies mid-call leaves its name for the next one. Only while this worker holds the
        claim (ClaimLost otherwise)."""
        now_ms = self._clock.now_ms()
        with unavailable_as_retryable(), self._engine.begin() as connection:
            self._move(
                connection,
                payment_id,
                State.PROCESSING,
                now_ms,
                reason,
                owned=True,
                provider=provider,
            )

    def finish(
        self, payment_id: str, outcome: Outcome, attempt: Attempt | None, *, owned: bool = True
    ) -> None:
        """Record the outcome, the attempt that led to it and the result event, atomically.
        `owned`: only while this worker holds the claim (ClaimLost otherwise)."""
        now_ms = self._clock.now_ms()
        result = outcome.result
        values: dict[str, Any] = {
            "attempts": outcome.attempts,
            "outcome_unknown": outcome.outcome_unknown,
            "code": outcome.code,
            "provider_reference": outcome.provider_reference,
            "claim_owner": None,
            "claim_until_ms": None,
            "next_check_ms": outcome.next_check_ms,
            "result_unpublished": outcome.unpublished,
        }
        if outcome.provider is not None:  # else keep the one the payment was bound to
            values["provider"] = outcome.provider
        if result is not None:
            values |= {
                "result_exchange": result.exchange,
                "result_routing_key": result.routing_key,
                "result_message_id": result.message_id,
                "result_type": result.message_type,
                "result_headers": json.dumps(result.headers, sort_keys=True),
                "result_body": result.body,
            }
        with unavailable_as_retryable(), self._engine.begin() as connection:
            self._move(
                connection, payment_id, outcome.state, now_ms, outcome.reason, owned=owned, **values
            )
            if attempt is not None:
                self._attempt(connection, payment_id, attempt, now_ms)

    # --- the reconciler ----------------------------------------------------------------------

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
        with self._engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def take_check(self, payment_id: str, hold_ms: int) -> RowMapping | None:
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
            return self._row(connection, payment_id)

    def published(self, payment_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(payments)
                .where(payments.c.payment_id == payment_id)
                .values(result_unpublished=False)
            )

    def unpublished_results(self, older_than_ms: int, limit: int) -> list[tuple[str, StoredResult]]:
        """Results the reconciler stored but whose publish was never confirmed."""
        query = (
            select(payments)
            .where(payments.c.result_unpublished.is_(True))
            .where(payments.c.updated_ms <= self._clock.now_ms() - older_than_ms)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings()
            return [(row["payment_id"], _stored_result(row)) for row in rows]

    def reschedule(self, payment_id: str, next_check_ms: int) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(payments)
                .where(payments.c.payment_id == payment_id)
                .values(next_check_ms=next_check_ms, updated_ms=self._clock.now_ms())
            )

    # --- reading ---------------------------------------------------------------------------

    def get(self, payment_id: str) -> RowMapping | None:
        with unavailable_as_retryable(), self._engine.connect() as connection:
            return self._row(connection, payment_id)

    def history(self, payment_id: str) -> tuple[Sequence[RowMapping], Sequence[RowMapping]]:
        """(transitions, attempts) of a payment, oldest first."""
        with unavailable_as_retryable(), self._engine.connect() as connection:
            moves = connection.execute(
                select(transitions)
                .where(transitions.c.payment_id == payment_id)
                .order_by(transitions.c.id)
            )
            tries = connection.execute(
                select(attempts).where(attempts.c.payment_id == payment_id).order_by(attempts.c.id)
            )
            return moves.mappings().all(), tries.mappings().all()

    # --- internals -------------------------------------------------------------------------

    def _new_row(self, new: NewPayment, now_ms: int) -> dict[str, Any]:
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
            "created_ms": now_ms,
            "updated_ms": now_ms,
            "provider": new.provider,
        }

    @staticmethod
    def _row(connection: Connection, payment_id: str) -> RowMapping | None:
        return connection.execute(_SELECT_PAYMENT, {"b_payment_id": payment_id}).mappings().first()

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
        owned: bool = False,
        **values: Any,
    ) -> None:
        changes = {"b_payment_id": payment_id, "state": target.value, "updated_ms": now_ms}
        if owned:
            # A worker moves only what it holds: one guarded UPDATE, no read first.
            current = State.PROCESSING
            check_transition(current, target)
            moved = connection.execute(
                _UPDATE_OWNED,
                {**changes, "b_state": current.value, "b_owner": self._owner, **values},
            )
            if moved.rowcount != 1:
                raise ClaimLost(f"payment {payment_id} is no longer claimed by this worker")
        else:
            row = self._row(connection, payment_id)
            if row is None:
                raise LookupError(f"no payment {payment_id} in the store")
            current = State(row["state"])
            check_transition(current, target)
            connection.execute(_UPDATE_IN_STATE, {**changes, "b_state": current.value, **values})
        self._history(connection, payment_id, current, target, now_ms, reason=reason)

    @staticmethod
    def _history(
        connection: Connection,
        payment_id: str,
        source: State,
        target: State,
        now_ms: int,
        *,
        reason: str | None = None,
    ) -> None:
        connection.execute(
            _INSERT_TRANSITION,
            {
                "payment_id": payment_id,
                "at_ms": now_ms,
                "from_state": source.value,
                "to_state": target.value,
                "reason": reason[:500] if reason else None,
            },
        )

    @staticmethod
    def _attempt(connection: Connection, payment_id: str, attempt: Attempt, now_ms: int) -> None:
        connection.execute(
            _INSERT_ATTEMPT,
            {
                "payment_id": payment_id,
                "attempt": attempt.number,
                "at_ms": now_ms,
                "outcome": attempt.outcome,
                "code": attempt.code,
                "provider_reference": attempt.provider_reference,
            },
        )


def _stored_result(row: RowMapping) -> StoredResult:
    return StoredResult(
        exchange=row["result_exchange"],
        routing_key=row["result_routing_key"],
        message_id=row["result_message_id"],
        message_type=row["result_type"],
        headers=json.loads(row["result_headers"]),
        body=bytes(row["result_body"]),
    )

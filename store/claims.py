"""The worker's path through the store: claim a payment, release it to a retry tier, bind it to
a provider, record its outcome, and note refusals made before any claim.

A worker may call the provider for a payment only while it holds the payment's claim. Claims
are rows written atomically (an INSERT, or an UPDATE guarded by the previous state and lease),
so concurrent deliveries of one payment to several workers (redeliveries, duplicate publishes)
never reach the provider twice at once; a claim expires after its lease, so a worker that died
mid-payment does not block it forever. Once a payment has a result, every later delivery
republishes the stored result event, byte for byte (I5), and never calls the provider again.

Every write goes through the process's writer (store/writer.py): the claims and outcomes that
arrive together are committed in one transaction, and each call returns only once its own work
is committed. Each unit below either writes its rows or raises ClaimLost before writing any
(`_move`'s guarded UPDATE comes first and matches no row), as the writer requires.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.dml import Insert

from common.clock import Clock
from common.errors import ClaimLost
from store import driver, rows, submissions
from store.database import reading
from store.health import StoreHealth
from store.outage import StoreAccess, not_a_store_call
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
from store.schema import attempts, payments, rejections, transitions
from store.states import State, check_transition
from store.submissions import Submission
from store.writer import Batched, Writer

# The hot path's statements, built once: SQLAlchemy then reuses their compiled form, where
# building `.values(...)` per call costs more than the database work itself.
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


def _insert_if_new(dialect: str, table: Table) -> Insert:
    """INSERT that writes nothing (rowcount 0) when the row, or one with the same unique key,
    exists: inside a batch a duplicate must not raise, which would roll back the others."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


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
        writer: Writer | None = None,
    ) -> None:
        super().__init__(engine, health=health)
        self._clock = clock
        self._owner = owner
        self._lease_ms = lease_ms
        self._writer = writer or Writer(engine)
        # The writes of every payment, on the driver where that is cheaper (store/driver.py).
        self._insert_payments = driver.insert_returning(
            engine.dialect,
            _insert_if_new(engine.dialect.name, payments).returning(
                payments.c.payment_id, payments.c.claim_token
            ),
        )
        self._insert_transitions = driver.prepared(engine.dialect, insert(transitions))
        self._insert_attempts = driver.prepared(engine.dialect, insert(attempts))
        self._update_owned = driver.prepared(engine.dialect, _UPDATE_OWNED)
        self._insert_rejections = _insert_if_new(engine.dialect.name, rejections)
        self._claims = Batched(self._claim_many, self._claim_one)
        self._moves = Batched(self._move_many, self._move_one)

    @property
    def writer(self) -> Writer:
        return self._writer

    @not_a_store_call
    def close(self) -> None:
        """Commit the writes handed over, then stop the writer (the engine is its owner's)."""
        self._writer.close()

    def claim(self, new: NewPayment) -> Claim:
        """Take the claim on a payment, or say why not (see the Claim classes)."""
        return self._writer.write(self._claims, new)

    def _claim_many(self, connection: Connection, news: list[NewPayment]) -> list[Claim]:
        """New payments inserted together (in payment id order, so two processes' batches lock
        their rows in the same order), each with its first transition; a payment that exists
        (a redelivery, a retry, a duplicate, an idempotency key taken) is decided by its row."""
        now_ms = self._clock.now_ms()
        tokens = [_new_token() for _ in news]
        new_rows = sorted(
            (self._new_row(new, now_ms, token) for new, token in zip(news, tokens, strict=True)),
            key=lambda row: row["payment_id"],
        )
        inserted = {
            (payment_id, token)
            for payment_id, token in self._insert_payments.insert(connection, new_rows)
        }
        self._insert_transitions.executemany(
            connection,
            [
                rows.transition_row(new.payment_id, State.RECEIVED, State.PROCESSING, now_ms)
                for new, token in zip(news, tokens, strict=True)
                if (new.payment_id, token) in inserted
            ],
        )
        claims: list[Claim] = []
        for new, token in zip(news, tokens, strict=True):
            if (new.payment_id, token) in inserted:
                claims.append(
                    Acquired(attempts=0, outcome_unknown=False, provider=new.provider, token=token)
                )
                continue
            row = self._existing(connection, new)
            if row is None:  # deleted meanwhile; never in practice, but do not guess
                claims.append(Busy(until_ms=now_ms))
            else:
                claims.append(self._claim_existing(connection, new, row, now_ms, token))
        return claims

    def _claim_one(self, connection: Connection, new: NewPayment) -> Claim:
        [claim] = self._claim_many(connection, [new])
        return claim

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
        self._insert_transitions.execute(
            connection,
            rows.transition_row(new.payment_id, state, State.PROCESSING, now_ms, reason),
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
        values = {
            "attempts": attempts,
            "outcome_unknown": outcome_unknown,
            "claim_owner": None,
            "claim_until_ms": None,
            "claim_token": None,
        }
        self._writer.write(
            self._moves, _Move(payment_id, State.RETRYING, token, None, values, attempt)
        )

    def bind_provider(self, payment_id: str, token: str, provider: str, reason: str) -> None:
        """Record the provider a payment is about to be sent to, before it is sent: a worker
        that dies mid-call leaves its name for the next one. Only for the current claim
        (ClaimLost otherwise)."""
        move = _Move(payment_id, State.PROCESSING, token, reason, {"provider": provider}, None)
        self._writer.write(self._moves, move)

    def finish(
        self, payment_id: str, outcome: OutcomeRecord, attempt: Attempt | None, *, token: str
    ) -> None:
        """Record the outcome, the attempt that led to it and the result event, atomically;
        only for the current claim `token` (ClaimLost otherwise). A stored result stays marked
        unpublished until `mark_published` says the broker confirmed it."""
        values = rows.outcome_columns(outcome)
        move = _Move(payment_id, outcome.state, token, outcome.reason, values, attempt)
        self._writer.write(self._moves, move)

    def mark_published(self, confirmed: Collection[tuple[str, str]]) -> None:
        """The broker confirmed these (payment id, result message id) publishes: one statement
        for the lot (store/rows.py)."""
        if not confirmed:
            return
        self._writer.run(lambda connection: rows.mark_published(connection, confirmed))

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

        def work(connection: Connection) -> None:
            # Refused before, by this or another worker: the row is there, nothing is written.
            connection.execute(self._insert_rejections, row)

        self._writer.run(work)

    def submission(self, message_id: str) -> Submission | None:
        """The HTTP API's submission published under this message id, if any: a message
        refused before any claim may still be the API's own, and settle its payment."""
        with reading(self._engine) as connection:
            return submissions.by_message(connection, message_id)

    def stored_result(self, payment_id: str) -> tuple[State, StoredResult] | None:
        """The payment's state and stored result event, if it has one (a worker whose claim
        was lost publishes it again)."""
        with reading(self._engine) as connection:
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

    def _move_many(self, connection: Connection, moves: list[_Move]) -> list[None]:
        """Moves of payments this worker's claims hold: one guarded UPDATE per payment, sent
        together (one executemany per set of columns), then their transitions and attempts.
        If any claim is no longer the current one, the UPDATEs match fewer rows than moves:
        _ClaimsChanged rolls the batch back, and each move runs alone (`_move_one`)."""
        now_ms = self._clock.now_ms()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for move in sorted(moves, key=lambda move: move.payment_id):
            check_transition(State.PROCESSING, move.target)
            changes = self._changes(move, now_ms)
            by_columns.setdefault(tuple(sorted(changes)), []).append(changes)
        for changes_list in by_columns.values():
            moved = self._update_owned.executemany(connection, changes_list)
            if moved != len(changes_list):
                raise _ClaimsChanged(
                    f"{len(changes_list) - moved} of {len(changes_list)} claims are no longer "
                    "current"
                )
        self._insert_transitions.executemany(
            connection,
            [
                rows.transition_row(
                    move.payment_id, State.PROCESSING, move.target, now_ms, move.reason
                )
                for move in moves
            ],
        )
        self._insert_attempts.executemany(
            connection,
            [
                rows.attempt_row(move.payment_id, move.attempt, now_ms)
                for move in moves
                if move.attempt is not None
            ],
        )
        return [None] * len(moves)

    def _move_one(self, connection: Connection, move: _Move) -> None:
        """One move alone: ClaimLost, before anything is written, unless the claim is the
        payment's current one."""
        now_ms = self._clock.now_ms()
        check_transition(State.PROCESSING, move.target)
        if self._update_owned.execute(connection, self._changes(move, now_ms)) != 1:
            raise ClaimLost(f"payment {move.payment_id}: this claim is no longer the current one")
        self._insert_transitions.execute(
            connection,
            rows.transition_row(
                move.payment_id, State.PROCESSING, move.target, now_ms, move.reason
            ),
        )
        if move.attempt is not None:
            self._insert_attempts.execute(
                connection, rows.attempt_row(move.payment_id, move.attempt, now_ms)
            )

    @staticmethod
    def _changes(move: _Move, now_ms: int) -> dict[str, Any]:
        # A worker moves only what its claim holds: one guarded UPDATE, no read first.
        return {
            "b_payment_id": move.payment_id,
            "b_state": State.PROCESSING.value,
            "b_token": move.token,
            "state": move.target.value,
            "updated_ms": now_ms,
            **move.values,
        }


class _ClaimsChanged(Exception):
    """A batch's moves matched fewer rows than it has moves: some claim was taken over."""


@dataclass(frozen=True)
class _Move:
    """A payment leaving `processing` (or staying there, bound to a provider) under a claim."""

    payment_id: str
    target: State
    token: str
    reason: str | None
    #: The columns the move sets besides state and updated_ms.
    values: dict[str, Any]
    attempt: Attempt | None


def _new_token() -> str:
    return uuid.uuid4().hex

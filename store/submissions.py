"""Payments taken by the HTTP API: one row per API key and idempotency key, holding the hash of
the request body and the signed message as first published. A repeated request finds its row:
the same body answers the same payment (its message published again, byte for byte), another
body is a conflict. The primary key settles two requests racing with one idempotency key.

Workers read it too (`by_message`): a message they refuse before any claim that is exactly one
the API published settles that payment (workers/refusals.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from common.clock import Clock
from store.database import reading
from store.outage import StoreAccess
from store.records import LookupBy, Page, StoredResult, check_limit
from store.schema import api_submissions


@dataclass(frozen=True)
class Submission:
    api_key_id: str
    idempotency_key: str
    body_sha256: str
    payment_id: str
    channel: str
    #: The signed payment request, exactly as first published.
    message: StoredResult
    merchant_reference: str
    #: The signing key's owner, the scope workers claim the payment in; None on submissions
    #: stored before it was kept.
    scope: str | None = None


class Submissions(StoreAccess):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        super().__init__(engine)
        self._clock = clock

    def find(self, api_key_id: str, idempotency_key: str) -> Submission | None:
        query = (
            select(api_submissions)
            .where(api_submissions.c.api_key_id == api_key_id)
            .where(api_submissions.c.idempotency_key == idempotency_key)
        )
        with reading(self._engine) as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _submission(row)

    def of_payment(self, payment_id: str) -> Submission | None:
        """The submission that made a payment; None if it did not come through the API."""
        query = select(api_submissions).where(api_submissions.c.payment_id == payment_id)
        with reading(self._engine) as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _submission(row)

    def matching(self, api_key_id: str, by: LookupBy, text: str, *, limit: int) -> Page[Submission]:
        """The payments one API key submitted with this merchant reference or Idempotency-Key
        (as `by` says), newest first, taken by a worker or not."""
        check_limit(limit)
        query = (
            select(api_submissions)
            .where(api_submissions.c.api_key_id == api_key_id)
            .where(api_submissions.c[by.value] == text)
            .order_by(api_submissions.c.created_ms.desc(), api_submissions.c.payment_id)
            .limit(limit + 1)
        )
        with reading(self._engine) as connection:
            rows = connection.execute(query).mappings().all()
        return Page.of([_submission(row) for row in rows], limit)

    def add(self, submission: Submission) -> Submission:
        """Store a new submission; if one with its keys exists already, that one."""
        message = submission.message
        row = {
            "api_key_id": submission.api_key_id,
            "idempotency_key": submission.idempotency_key,
            "body_sha256": submission.body_sha256,
            "payment_id": submission.payment_id,
            "channel": submission.channel,
            "merchant_reference": submission.merchant_reference,
            "exchange": message.exchange,
            "routing_key": message.routing_key,
            "message_id": message.message_id,
            "message_type": message.message_type,
            "headers": json.dumps(message.headers, sort_keys=True),
            "body": message.body,
            "created_ms": self._clock.now_ms(),
            "scope": submission.scope,
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(api_submissions.insert().values(**row))
        except IntegrityError:  # the same keys, stored a moment ago by another request
            existing = self.find(submission.api_key_id, submission.idempotency_key)
            if existing is None:
                raise
            return existing
        return submission


def by_message(connection: Connection, message_id: str) -> Submission | None:
    """The submission published under this message id, if any (ids are random UUIDs: one)."""
    query = select(api_submissions).where(api_submissions.c.message_id == message_id)
    row = connection.execute(query).mappings().first()
    return None if row is None else _submission(row)


def _submission(row: RowMapping) -> Submission:
    return Submission(
        api_key_id=row["api_key_id"],
        idempotency_key=row["idempotency_key"],
        body_sha256=row["body_sha256"],
        payment_id=row["payment_id"],
        channel=row["channel"],
        message=StoredResult(
            exchange=row["exchange"],
            routing_key=row["routing_key"],
            message_id=row["message_id"],
            message_type=row["message_type"],
            headers=json.loads(row["headers"]),
            body=bytes(row["body"]),
        ),
        merchant_reference=row["merchant_reference"],
        scope=row["scope"],
    )

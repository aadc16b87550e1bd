"""The audit record of discarded dead letters: one row per message an operator removed from the
dead-letter queue without replaying it (`paymq dlq discard`). A row is committed before the
message is acked, so a discard either left its record or left the message where it was. Rows
are only ever added: discarding the same message twice (a command stopped between the commit
and the ack, which leaves the message in the queue) records it twice."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from store.outage import StoreAccess
from store.records import Discard
from store.schema import dead_letter_discards


class Discards(StoreAccess):
    def record(self, discard: Discard) -> None:
        """Write and commit one discard (StoreUnavailable if the store does not answer)."""
        with self._engine.begin() as connection:
            connection.execute(dead_letter_discards.insert().values(**_row(discard)))

    def recent(self, limit: int) -> list[Discard]:
        """The latest `limit` discards, newest first."""
        query = select(dead_letter_discards).order_by(dead_letter_discards.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_discard(row) for row in rows]


def _row(discard: Discard) -> dict[str, object]:
    return {
        "message_id": discard.message_id,
        "body_sha256": discard.body_sha256,
        "channel": discard.channel,
        "message_type": discard.message_type,
        "code": discard.code,
        "dead_letter_reason": discard.dead_letter_reason,
        "reason": discard.reason,
        "discarded_by": discard.discarded_by,
        "discarded_ms": discard.discarded_ms,
        "headers": json.dumps(discard.headers, sort_keys=True),
        "body": discard.body,
    }


def _discard(row: RowMapping) -> Discard:
    return Discard(
        message_id=row["message_id"],
        body_sha256=row["body_sha256"],
        channel=row["channel"],
        message_type=row["message_type"],
        code=row["code"],
        dead_letter_reason=row["dead_letter_reason"],
        reason=row["reason"],
        discarded_by=row["discarded_by"],
        discarded_ms=row["discarded_ms"],
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
    )

"""The audit record of discarded dead letters: one row per message an operator removed from the
dead-letter queue without replaying it (`paymq dlq discard`). A row is committed before the
message is acked, so a discard either left its record or left the message where it was. Rows
are only ever added: discarding the same message twice (a command stopped between the commit
and the ack, which leaves the message in the queue) records it twice."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from store.database import reading
from store.outage import StoreAccess
from store.records import Discard
from store.schema import dead_letter_discards


class Discards(StoreAccess):
    def record(self, discard: Discard) -> None:
        """Write and commit one discard, durably: on SQLite too, where the store's other
        writes survive a crash of the process but not of the machine (synchronous=NORMAL),
        this commit is synced to disk (FULL) before it returns, for the message is acked
        next. StoreUnavailable if the store does not answer."""
        with self._engine.connect() as connection, _synced(connection), connection.begin():
            connection.execute(dead_letter_discards.insert().values(**_row(discard)))

    def recent(self, limit: int) -> list[Discard]:
        """The latest `limit` discards, newest first."""
        query = select(dead_letter_discards).order_by(dead_letter_discards.c.id.desc()).limit(limit)
        with reading(self._engine) as connection:
            rows = connection.execute(query).mappings().all()
        return [_discard(row) for row in rows]


@contextlib.contextmanager
def _synced(connection: Connection) -> Iterator[None]:
    """SQLite's commits on this connection synced to disk while the block runs (outside any
    transaction: SQLite takes the setting between transactions); PostgreSQL's always are."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    if driver is None:  # a connection already invalidated: the statement will say so
        yield
        return
    driver.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        driver.execute("PRAGMA synchronous=NORMAL")  # the store's setting (store/database.py)


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

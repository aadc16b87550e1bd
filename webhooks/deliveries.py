"""Webhook deliveries in the payment store: one row per result event and endpoint.

    pending --claim--> delivering --2xx--> delivered
       ^                  |  \\--else, attempts left--> pending (next_attempt_ms later)
       |                  \\-----else, none left------> failed
       +------- redeliver (attempts reset) ----------- failed / delivered

The primary key (event_id, endpoint_id) makes a redelivered event a no-op. A claim is a guarded
UPDATE that sets a lease: two senders never hold one row at once, and a sender that died
mid-send holds it no longer than the lease. Outcomes are recorded only by the lease's holder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from common.clock import Clock
from store.database import reading
from store.outage import StoreAccess
from store.schema import webhook_deliveries as table

_KEY = (table.c.event_id, table.c.endpoint_id)


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class NewDelivery:
    event_id: str
    endpoint_id: str
    payment_id: str | None
    channel: str
    status: str
    body: bytes


@dataclass(frozen=True)
class Claimed:
    event_id: str
    endpoint_id: str
    payment_id: str | None
    body: bytes
    #: The number of the attempt this claim is for (1 = the first).
    attempt: int


class WebhookDeliveries(StoreAccess):
    def __init__(self, engine: Engine, clock: Clock, *, owner: str, lease_ms: int) -> None:
        super().__init__(engine)
        self._clock = clock
        self._owner = owner
        self._lease_ms = lease_ms

    def add(self, deliveries: Sequence[NewDelivery]) -> int:
        """Store the deliveries not stored yet (a redelivered event adds none); how many new."""
        if not deliveries:
            return 0
        now_ms = self._clock.now_ms()
        rows = [
            {
                **asdict(d),
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_ms": now_ms,
                "created_ms": now_ms,
            }
            for d in deliveries
        ]
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        # RETURNING, not rowcount: the driver may report -1 for an INSERT ... ON CONFLICT.
        statement = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(table.c.event_id)
        )
        added = 0
        with self._engine.begin() as connection:
            for row in rows:
                added += len(connection.execute(statement, row).all())
        return added

    def claim_due(
        self, limit: int, *, per_endpoint: int, busy: Mapping[str, int] | None = None
    ) -> list[Claimed]:
        """Take up to `limit` deliveries that are due, or whose sender's lease ran out, at most
        `per_endpoint` of one endpoint counting the `busy` ones (in flight here)."""
        taken_per_endpoint = dict(busy or {})
        now_ms = self._clock.now_ms()
        due = or_(
            and_(table.c.state == DeliveryState.PENDING.value, table.c.next_attempt_ms <= now_ms),
            and_(table.c.state == DeliveryState.DELIVERING.value, table.c.lease_until_ms <= now_ms),
        )
        candidates = select(*_KEY).where(due).order_by(table.c.next_attempt_ms).limit(limit * 4)
        full = [e for e, n in taken_per_endpoint.items() if n >= per_endpoint]
        if full:
            # An endpoint already at its share is left out of the query itself: a backlog of
            # its due rows must not fill the candidates and hide every other endpoint's.
            candidates = candidates.where(table.c.endpoint_id.not_in(full))
        claimed: list[Claimed] = []
        with self._engine.begin() as connection:
            for event_id, endpoint_id in connection.execute(candidates).all():
                if len(claimed) >= limit:
                    break
                if taken_per_endpoint.get(endpoint_id, 0) >= per_endpoint:
                    continue  # a slow endpoint does not take every thread
                taken = connection.execute(
                    update(table)
                    .where(table.c.event_id == event_id, table.c.endpoint_id == endpoint_id)
                    .where(due)
                    .values(
                        state=DeliveryState.DELIVERING.value,
                        attempts=table.c.attempts + 1,
                        lease_owner=self._owner,
                        lease_until_ms=now_ms + self._lease_ms,
                    )
                    .returning(table.c.payment_id, table.c.body, table.c.attempts)
                ).first()
                if taken is not None:  # else another sender took it meanwhile
                    claimed.append(Claimed(event_id, endpoint_id, taken[0], taken[1], taken[2]))
                    taken_per_endpoint[endpoint_id] = taken_per_endpoint.get(endpoint_id, 0) + 1
        return claimed

    def delivered(self, claimed: Claimed) -> bool:
        return self._settle(
            claimed, state=DeliveryState.DELIVERED, delivered_ms=self._clock.now_ms()
        )

    def retry(self, claimed: Claimed, error: str, next_attempt_ms: int) -> bool:
        return self._settle(
            claimed,
            state=DeliveryState.PENDING,
            last_error=error,
            next_attempt_ms=next_attempt_ms,
        )

    def give_up(self, claimed: Claimed, error: str) -> bool:
        return self._settle(claimed, state=DeliveryState.FAILED, last_error=error)

    def _settle(self, claimed: Claimed, *, state: DeliveryState, **values: object) -> bool:
        """Record an attempt's outcome; False if this sender no longer holds the row."""
        statement = (
            update(table)
            .where(table.c.event_id == claimed.event_id)
            .where(table.c.endpoint_id == claimed.endpoint_id)
            .where(table.c.state == DeliveryState.DELIVERING.value)
            .where(table.c.lease_owner == self._owner)
            .where(table.c.attempts == claimed.attempt)
            .values(state=state.value, lease_owner=None, lease_until_ms=None, **values)
        )
        with self._engine.begin() as connection:
            return bool(connection.execute(statement).rowcount == 1)

    def redeliver(
        self, *, event_id: str | None = None, failed: bool = False, endpoint_id: str | None = None
    ) -> int:
        """Put deliveries back to pending, due now, attempts reset; how many. Rows being sent
        right now are left alone."""
        statement = update(table).where(table.c.state != DeliveryState.DELIVERING.value)
        if event_id is not None:
            statement = statement.where(table.c.event_id == event_id)
        if failed:
            statement = statement.where(table.c.state == DeliveryState.FAILED.value)
        if endpoint_id is not None:
            statement = statement.where(table.c.endpoint_id == endpoint_id)
        values = {
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_ms": self._clock.now_ms(),
            "last_error": None,
            "delivered_ms": None,
        }
        with self._engine.begin() as connection:
            return int(connection.execute(statement.values(**values)).rowcount)

    def get(self, event_id: str, endpoint_id: str) -> RowMapping | None:
        query = select(table).where(
            table.c.event_id == event_id, table.c.endpoint_id == endpoint_id
        )
        with reading(self._engine) as connection:
            return connection.execute(query).mappings().first()

    def of_event(self, event_id: str) -> Sequence[RowMapping]:
        query = select(table).where(table.c.event_id == event_id).order_by(table.c.endpoint_id)
        with reading(self._engine) as connection:
            return connection.execute(query).mappings().all()

    def counts(self) -> Sequence[RowMapping]:
        """Per endpoint and state: how many, and the oldest created_ms."""
        query = (
            select(
                table.c.endpoint_id,
                table.c.state,
                func.count().label("count"),
                func.min(table.c.created_ms).label("oldest_ms"),
            )
            .group_by(table.c.endpoint_id, table.c.state)
            .order_by(table.c.endpoint_id, table.c.state)
        )
        with reading(self._engine) as connection:
            return connection.execute(query).mappings().all()

    def recent_failures(self, limit: int) -> Sequence[RowMapping]:
        query = (
            select(
                table.c.event_id,
                table.c.endpoint_id,
                table.c.payment_id,
                table.c.attempts,
                table.c.last_error,
                table.c.created_ms,
            )
            .where(table.c.state == DeliveryState.FAILED.value)
            .order_by(table.c.created_ms.desc())
            .limit(limit)
        )
        with reading(self._engine) as connection:
            return connection.execute(query).mappings().all()

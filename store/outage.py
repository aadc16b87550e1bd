"""The database's failures, as paymq sees them: one retryable StoreUnavailable.

SQLAlchemy's errors are mapped here and nowhere else, so a store call never lets a driver
exception through to a worker, the reconciler, the API or the CLI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from common.errors import StoreUnavailable
from store.health import StoreHealth


@contextlib.contextmanager
def unavailable_as_retryable() -> Iterator[None]:
    """The database's own failures (down, locked too long, connection lost, a statement past
    its timeout, no pooled connection free in time) become one retryable error: the message
    waits in a retry tier, nothing is decided on a guess."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"payment store unavailable: {type(exc.orig).__name__}") from None
    except PoolTimeout:
        raise StoreUnavailable(
            "payment store unavailable: no connection free in time (the database is stalled "
            "or locked)"
        ) from None


def ping(engine: Engine) -> None:
    """Does the store answer? StoreUnavailable if not."""
    with unavailable_as_retryable(), engine.connect() as connection:
        connection.execute(select(1))


class StoreAccess:
    """Base of the store's classes: `_calls` around each of their calls maps the database's
    failures, and tells the store's health (if it has one) of each failure and each answer."""

    def __init__(self, engine: Engine, *, health: StoreHealth | None = None) -> None:
        self._engine = engine
        self._health = health

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def health(self) -> StoreHealth:
        if self._health is None:  # one built without (tests, tools) gets a silent one
            self._health = StoreHealth(lambda: ping(self._engine))
        return self._health

    @contextlib.contextmanager
    def _calls(self) -> Iterator[None]:
        """Every store call: the database's failures become StoreUnavailable, and the store's
        health hears of each failure and of each answer."""
        try:
            with unavailable_as_retryable():
                yield
        except StoreUnavailable as exc:
            if self._health is not None:
                self._health.failed(exc)
            raise
        if self._health is not None:
            self._health.answered()

"""The database's failures, as paymq sees them: one retryable StoreUnavailable.

SQLAlchemy's errors are mapped here and nowhere else, so a store call never lets a driver
exception through to a worker, the reconciler, the API or the CLI. Every store class derives
from StoreAccess, which runs each public method it defines as one mapped call: a method added
later is mapped without a word, and tests/unit/test_store_outage.py calls every one against a
database that does not answer.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from common.errors import StoreUnavailable
from store.health import StoreHealth

R = TypeVar("R")


@contextlib.contextmanager
def unavailable_as_retryable() -> Iterator[None]:
    """The database's own failures (down, locked too long, connection lost, a statement past
    its timeout, no pooled connection free in time) become one retryable error: the message
    waits in a retry tier, nothing is decided on a guess. The driver's error stays attached as
    the cause, for whoever reads the traceback."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreUnavailable(f"payment store unavailable: {type(exc.orig).__name__}") from exc
    except PoolTimeout as exc:
        raise StoreUnavailable(
            "payment store unavailable: no connection free in time (the database is stalled "
            "or locked)"
        ) from exc


def ping(engine: Engine) -> None:
    """Does the store answer, for writes too? StoreUnavailable if not. On SQLite it takes the
    write lock: a store whose lock another process holds answers reads, yet records nothing."""
    with unavailable_as_retryable(), engine.connect() as connection:
        connection.execute(select(1))


class StoreAccess:
    """Base of the store's classes. Each public method a subclass defines is one store call
    (`_calls`): the database's failures become StoreUnavailable, and the store's health (if it
    has one) hears of each failure and each answer."""

    def __init__(self, engine: Engine, *, health: StoreHealth | None = None) -> None:
        self._engine = engine
        self._health = health

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            local = getattr(member, "_not_a_store_call", False)
            if not name.startswith("_") and inspect.isfunction(member) and not local:
                setattr(cls, name, _store_call(member))

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
        try:
            with unavailable_as_retryable():
                yield
        except StoreUnavailable as exc:
            if self._health is not None:
                self._health.failed(exc)
            raise
        if self._health is not None:
            self._health.answered()


def not_a_store_call(method: Callable[..., R]) -> Callable[..., R]:
    """A public method that asks the database nothing (e.g. `close`): not mapped, and it tells
    the store's health nothing."""
    method._not_a_store_call = True  # type: ignore[attr-defined]
    return method


def _store_call(method: Callable[..., R]) -> Callable[..., R]:
    @functools.wraps(method)
    def call(self: StoreAccess, *args: Any, **kwargs: Any) -> R:
        with self._calls():
            return method(self, *args, **kwargs)

    return call

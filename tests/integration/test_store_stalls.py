"""A store that stops answering fails each call within its timeout, as StoreUnavailable, on
both databases: never a hang for as long as the fault lasts, never a foreign exception that
counts the message as a handler failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text

from common.clock import FixedClock
from common.errors import StoreUnavailable
from store.claims import Claims
from store.database import StoreTimeouts, create_store_engine
from store.records import Acquired, NewPayment

pytestmark = pytest.mark.integration

#: Short, so the test is quick; what is tested is the kind of failure, not its timing.
TIMEOUT_S = 1.0
WAIT_S = 60.0


def payment(n: int) -> NewPayment:
    return NewPayment(
        payment_id=f"00000000-0000-0000-0000-{n:012d}",
        scope="shop",
        idempotency_key=f"key-{n}",
        request_hash="hash",
        request_message_id=f"m-{n}",
        channel="card",
        merchant_reference=f"order-{n}",
        amount_minor=1050,
        currency="USD",
        payment_created_ms=1_899_999_999_000,
    )


@contextmanager
def bounded_store(store_engine: Engine) -> Iterator[Claims]:
    """A store on the same database as `store_engine`, with short bounds on every call."""
    url = store_engine.url.render_as_string(hide_password=False)
    engine = create_store_engine(url, pool_size=1, timeouts=StoreTimeouts(2.0, TIMEOUT_S))
    claims = Claims(engine, FixedClock(1_900_000_000_000), owner="w", lease_ms=60_000)
    try:
        yield claims
    finally:
        claims.close()
        engine.dispose()


@contextmanager
def locked(store_engine: Engine) -> Iterator[None]:
    """Another process holds the write lock: SQLite's (BEGIN IMMEDIATE) or PostgreSQL's table
    lock on payments."""
    with store_engine.connect() as connection:
        if store_engine.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE"))
        else:
            connection.execute(text("SELECT 1"))  # BEGIN IMMEDIATE, by the engine's listener
        try:
            yield
        finally:
            connection.rollback()


def test_a_claim_behind_a_lock_held_past_the_timeout_fails_as_store_unavailable(
    store_engine: Engine,
):
    with (
        bounded_store(store_engine) as store,
        locked(store_engine),
        pytest.raises(StoreUnavailable),
    ):
        store.claim(payment(1))
    # and once the lock is gone the same store answers
    with bounded_store(store_engine) as store:
        assert isinstance(store.claim(payment(1)), Acquired)


def test_threads_queued_for_a_stalled_store_all_fail_as_store_unavailable(
    store_engine: Engine,
):
    # Given a store whose one pooled connection is stuck behind a lock held elsewhere
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            store.claim(payment(n))
        except BaseException as exc:
            errors.append(exc)

    with bounded_store(store_engine) as store, locked(store_engine):
        # When several payments' threads call it at once (some wait for the connection)
        threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
    # Then every one failed as StoreUnavailable (the pool's own timeout included), nothing else
    assert len(errors) == 4
    assert {type(e) for e in errors} == {StoreUnavailable}

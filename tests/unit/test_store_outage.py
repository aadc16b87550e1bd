"""A payment store that does not answer never decides anything: the message waits and comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from common.clock import FixedClock
from common.errors import StoreUnavailable
from store.claims import Claims
from store.database import create_store_engine
from store.records import NewPayment
from store.views import PaymentViews
from tests.unit.conftest import FakeChannel, Worker


def unreachable_store(clock: FixedClock) -> Claims:
    # Nothing listens on port 1: every connection is refused at once.
    engine = create_store_engine("postgresql+psycopg://paymq@127.0.0.1:1/paymq?connect_timeout=2")
    return Claims(engine, clock, owner="w", lease_ms=60_000)


def test_an_unreachable_store_is_a_retryable_error(clock: FixedClock):
    store = unreachable_store(clock)
    new = NewPayment("p", "shop", "k", "h", "m", "card", "r", 1, "USD", 0)
    with pytest.raises(StoreUnavailable, match="payment store unavailable"):
        store.claim(new)


def test_without_the_store_a_payment_waits_in_a_retry_tier_and_is_not_executed(
    make_request: Callable[..., Any], make_worker: Callable[..., Worker], clock: FixedClock
):
    worker = make_worker(FakeChannel("card"))
    worker.handler._store = unreachable_store(clock)
    _, message = make_request()
    handled = worker.handle(message)
    assert handled.status is None
    [retry] = handled.retries
    assert retry.exchange == "t.retry.1000ms"
    assert retry.body == message.body
    assert worker.channel.calls == []
    assert handled.events == []


def test_reading_a_payment_from_an_unreachable_store_is_a_retryable_error(clock: FixedClock):
    # The HTTP API and `paymq status`/`top` read payments: a store outage is a 503 or a clear
    # error there, never an unmapped driver exception.
    views = PaymentViews(unreachable_store(clock).engine)
    with pytest.raises(StoreUnavailable):
        views.get("p")
    with pytest.raises(StoreUnavailable):
        views.history("p")
    with pytest.raises(StoreUnavailable):
        views.overview(now_ms=0)

"""A payment store that does not answer never decides anything: the message waits and comes back.

Every public method of every store class meets a database that does not answer as
StoreUnavailable, with the driver's error kept as its cause (the HTTP API and `paymq status`/`top`
answer a 503 or a clear error, never an unmapped driver exception). CALLS below calls each
method; a store class or a public method missing from it fails
test_every_public_store_method_is_called_against_an_unreachable_database.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

import store
from common.clock import Clock, FixedClock
from common.errors import StoreUnavailable
from store.chain import ChainTransactions, SignedTransaction
from store.checks import Checks
from store.claims import Claims
from store.database import StoreTimeouts, create_store_engine, upgrade
from store.discards import Discards
from store.health import StoreHealth
from store.outage import StoreAccess
from store.records import (
    Discard,
    LookupBy,
    NewPayment,
    OutcomeRecord,
    Rejection,
    StoredPayment,
    StoredResult,
)
from store.states import State
from store.submissions import Submission, Submissions
from store.views import PaymentViews
from store.writer import Writer
from tests.unit.conftest import FakeChannel, Worker
from webhooks.deliveries import Claimed, NewDelivery, WebhookDeliveries

# Nothing listens on port 1: every connection is refused at once.
UNREACHABLE_URL = "postgresql+psycopg://paymq@127.0.0.1:1/paymq?connect_timeout=2"

NEW = NewPayment("p", "shop", "k", "h", "m", "card", "r", 1, "USD", 0)
SUCCEEDED = OutcomeRecord(State.SUCCEEDED, 1, False)
RESULT = StoredResult("t.results", "card.succeeded", "e-1", "paymq.payment_result.v1", {}, b"{}")
ABANDONED = StoredPayment(
    payment_id="p",
    request_message_id="m",
    idempotency_key="k",
    channel="card",
    merchant_reference="r",
    amount_minor=1,
    currency="USD",
    payment_created_ms=0,
    state=State.PROCESSING,
    attempts=0,
    outcome_unknown=False,
    provider=None,
    provider_reference=None,
    checks=0,
    updated_ms=0,
)
CLAIMED = Claimed("e-1", "shop", "p", b"{}", attempt=1)
DISCARD = Discard("m", "sha", "card", "t", "expired", "", "stale", "ops", 0, {}, b"{}")


def never_signed(_nonce: int) -> SignedTransaction:
    raise AssertionError("nothing is signed before the wallet's row is locked")


#: How each store class is built: the worker's and the reconciler's with the process's health.
STORES: dict[type[StoreAccess], Callable[[Engine, Clock, StoreHealth], StoreAccess]] = {
    Claims: lambda engine, clock, health: Claims(
        engine, clock, owner="w", lease_ms=60_000, health=health
    ),
    Checks: lambda engine, clock, health: Checks(engine, clock, health=health),
    PaymentViews: lambda engine, _clock, _health: PaymentViews(engine),
    Submissions: lambda engine, clock, _health: Submissions(engine, clock),
    ChainTransactions: lambda engine, clock, _health: ChainTransactions(engine, clock),
    WebhookDeliveries: lambda engine, clock, _health: WebhookDeliveries(
        engine, clock, owner="w", lease_ms=60_000
    ),
    Discards: lambda engine, _clock, _health: Discards(engine),
}

#: One call of each public store method, with arguments that reach the database.
CALLS: dict[str, Callable[[Any], object]] = {
    "Claims.claim": lambda s: s.claim(NEW),
    "Claims.retry_later": lambda s: s.retry_later(
        "p", token="t", attempts=1, outcome_unknown=False, attempt=None
    ),
    "Claims.bind_provider": lambda s: s.bind_provider("p", "t", "stripe", "routed"),
    "Claims.finish": lambda s: s.finish("p", SUCCEEDED, None, token="t"),
    "Claims.mark_published": lambda s: s.mark_published([("p", "e-1")]),
    "Claims.note_rejection": lambda s: s.note_rejection(
        Rejection("m", "sha", None, "unknown_key", "refused")
    ),
    "Claims.stored_result": lambda s: s.stored_result("p"),
    "Claims.submission": lambda s: s.submission("m"),
    "Checks.due_for_check": lambda s: s.due_for_check(10),
    "Checks.take_check": lambda s: s.take_check("p", 60_000),
    "Checks.finish": lambda s: s.finish("p", SUCCEEDED),
    "Checks.reschedule": lambda s: s.reschedule("p", 0),
    "Checks.unpublished_results": lambda s: s.unpublished_results(0, 10),
    "Checks.mark_published": lambda s: s.mark_published([("p", "e-1")]),
    "Checks.abandoned_claims": lambda s: s.abandoned_claims(0, 10),
    "Checks.settle_abandoned": lambda s: s.settle_abandoned(
        ABANDONED, OutcomeRecord(State.IN_DOUBT, 0, True)
    ),
    "PaymentViews.get": lambda s: s.get("p"),
    "PaymentViews.stored_result": lambda s: s.stored_result("p"),
    "PaymentViews.history": lambda s: s.history("p"),
    "PaymentViews.rejection_of": lambda s: s.rejection_of("m", "sha"),
    "PaymentViews.describe": lambda s: s.describe("p"),
    "PaymentViews.overview": lambda s: s.overview(now_ms=0),
    "PaymentViews.find": lambda s: s.find("order-1", set(LookupBy), limit=10),
    "Submissions.find": lambda s: s.find("shop", "k"),
    "Submissions.of_payment": lambda s: s.of_payment("p"),
    "Submissions.matching": lambda s: s.matching(
        "shop", LookupBy.MERCHANT_REFERENCE, "order-1", limit=10
    ),
    "Submissions.add": lambda s: s.add(Submission("shop", "k", "sha", "p", "card", RESULT, "r")),
    "ChainTransactions.find": lambda s: s.find("p"),
    "ChainTransactions.sign_and_store": lambda s: s.sign_and_store(
        "p", chain_id=1, address="0xabc", nonce_floor=0, sign=never_signed
    ),
    "ChainTransactions.wallet_transactions": lambda s: s.wallet_transactions(1, "0xabc"),
    "ChainTransactions.next_nonce": lambda s: s.next_nonce(1, "0xabc"),
    "ChainTransactions.signed_since": lambda s: s.signed_since(1, "0xabc", 0),
    "WebhookDeliveries.add": lambda s: s.add(
        [NewDelivery("e-1", "shop", "p", "card", "succeeded", b"{}")]
    ),
    "WebhookDeliveries.claim_due": lambda s: s.claim_due(10, per_endpoint=2),
    "WebhookDeliveries.delivered": lambda s: s.delivered(CLAIMED),
    "WebhookDeliveries.retry": lambda s: s.retry(CLAIMED, "HTTP 500", 0),
    "WebhookDeliveries.give_up": lambda s: s.give_up(CLAIMED, "HTTP 500"),
    "WebhookDeliveries.redeliver": lambda s: s.redeliver(failed=True),
    "WebhookDeliveries.get": lambda s: s.get("e-1", "shop"),
    "WebhookDeliveries.of_event": lambda s: s.of_event("e-1"),
    "WebhookDeliveries.counts": lambda s: s.counts(),
    "WebhookDeliveries.recent_failures": lambda s: s.recent_failures(10),
    "Discards.record": lambda s: s.record(DISCARD),
    "Discards.recent": lambda s: s.recent(10),
}
#: Public methods that never reach the database.
NO_DATABASE = {"ChainTransactions.close", "Claims.close"}
#: Classes over the engine that map the database's failures themselves, with the same helper.
MAPS_ITS_OWN = {Writer}


def unreachable_store(clock: FixedClock) -> Claims:
    return Claims(create_store_engine(UNREACHABLE_URL), clock, owner="w", lease_ms=60_000)


@pytest.fixture(scope="module")
def unreachable() -> Iterator[Engine]:
    engine = create_store_engine(UNREACHABLE_URL)
    yield engine
    engine.dispose()


@pytest.fixture
def health() -> Iterator[StoreHealth]:
    health = StoreHealth(lambda: None, probe_interval_s=3600)
    yield health
    health.close()


def test_without_the_store_a_payment_waits_in_a_retry_tier_and_is_not_executed(
    make_request: Callable[..., Any], make_worker: Callable[..., Worker], clock: FixedClock
):
    worker = make_worker(FakeChannel("card"))
    unreachable = unreachable_store(clock)
    worker.handler._store = unreachable
    _, message = make_request()
    try:
        handled = worker.handle(message)
    finally:
        unreachable.close()
        unreachable.engine.dispose()
    assert handled.status is None
    [retry] = handled.retries
    assert retry.exchange == "t.retry.1000ms"
    assert retry.body == message.body
    assert worker.channel.calls == []
    assert handled.events == []


@pytest.mark.parametrize("method", sorted(CALLS))
def test_a_store_method_meets_an_unreachable_database_as_store_unavailable_with_its_cause(
    unreachable: Engine, clock: FixedClock, health: StoreHealth, method: str
):
    class_name, _, _name = method.partition(".")
    [build] = [build for cls, build in STORES.items() if cls.__name__ == class_name]
    target = build(unreachable, clock, health)
    try:
        with pytest.raises(StoreUnavailable, match="payment store unavailable") as raised:
            CALLS[method](target)
    finally:
        if isinstance(target, Claims):
            target.close()
    assert isinstance(raised.value.__cause__, DBAPIError)
    if target.health is health:  # the worker's and the reconciler's stop their consumer
        assert not health.up


def test_no_connection_free_in_time_is_store_unavailable_with_the_pool_timeout_as_cause(
    tmp_path: Path,
):
    # Given a store whose one pooled connection another thread holds past the timeout
    engine = create_store_engine(
        f"sqlite:///{tmp_path / 'paymq.db'}", timeouts=StoreTimeouts(1.0, 0.05)
    )
    upgrade(engine)
    try:
        with engine.connect(), pytest.raises(StoreUnavailable, match="no connection") as raised:
            PaymentViews(engine).get("p")
    finally:
        engine.dispose()
    assert isinstance(raised.value.__cause__, PoolTimeout)


def store_classes() -> set[type[StoreAccess]]:
    """The product's store classes; tests subclass some of them to inject faults, and those
    (whichever test modules the session imported) are not the product's."""
    found: set[type[StoreAccess]] = set()
    waiting = list(StoreAccess.__subclasses__())
    while waiting:
        cls = waiting.pop()
        if not cls.__module__.startswith("tests."):
            found.add(cls)
        waiting.extend(cls.__subclasses__())
    return found


def test_every_class_over_the_store_engine_is_a_store_access() -> None:
    # A class of the store package that takes an engine, but maps nothing, fails here.
    for module in pkgutil.iter_modules(store.__path__, prefix="store."):
        imported = importlib.import_module(module.name)
        for cls in vars(imported).values():
            if not inspect.isclass(cls) or cls.__module__ != module.name:
                continue
            if issubclass(cls, BaseException):
                continue
            if "engine" in inspect.signature(cls).parameters:
                assert issubclass(cls, StoreAccess) or cls in MAPS_ITS_OWN, cls


def test_every_public_store_method_is_called_against_an_unreachable_database() -> None:
    assert store_classes() == set(STORES)
    public = {
        f"{cls.__name__}.{name}"
        for cls in STORES
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == set(CALLS) | NO_DATABASE

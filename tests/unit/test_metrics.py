"""What a worker counts: payments by status, retries, dead letters, queue lag, provider calls;
and the store's gauges read when scraped."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

from common.clock import FixedClock
from common.errors import (
    ConfigurationError,
    OutcomeUnknown,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    StoreUnavailable,
)
from common.metrics import CachedRead, Metrics
from store.gauges import StateCount, StoreGauges
from workers.providers.timing import timed_call

if TYPE_CHECKING:
    from common.envelope import InboundMessage
    from tests.unit.conftest import Worker


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_paid_payment_counts_once_by_status_with_its_queue_lag(
    make_request: Callable[..., Any], worker: Worker, clock: FixedClock
) -> None:
    _, message = make_request(created_at_ms=clock.now_ms() - 2_500)

    worker.handle(message)

    registry = worker.metrics.registry
    assert sample(registry, "paymq_payments_total", channel="card", status="succeeded") == 1
    assert sample(registry, "paymq_queue_lag_seconds_count", channel="card") == 1
    assert sample(registry, "paymq_queue_lag_seconds_sum", channel="card") == 2.5
    assert sample(registry, "paymq_retries_total", channel="card", code="provider_unavailable") == 0


def test_a_paid_payment_times_its_claim_and_its_outcome_once_each(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    worker.handle(make_request()[1])

    registry = worker.metrics.registry
    for write in ("claim", "outcome"):
        labels = {"channel": "card", "write": write}
        assert sample(registry, "paymq_store_write_seconds_count", **labels) == 1
        assert sample(registry, "paymq_store_write_seconds_sum", **labels) > 0


def test_a_message_refused_before_any_claim_times_no_store_write(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    _, message = make_request()
    forged = dataclasses.replace(message, body=message.body.replace(b"order-1", b"order-2"))

    worker.handle(forged)

    registry = worker.metrics.registry
    for write in ("claim", "outcome"):
        labels = {"channel": "card", "write": write}
        assert sample(registry, "paymq_store_write_seconds_count", **labels) == 0


def test_a_transient_failure_counts_a_retry_by_code_and_no_payment_status(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    worker.channel.script(ProviderUnavailable("connection refused"))

    handled = worker.handle(make_request()[1])

    assert len(handled.retries) == 1
    registry = worker.metrics.registry
    assert sample(registry, "paymq_retries_total", channel="card", code="provider_unavailable") == 1
    assert sample(registry, "paymq_payments_total", channel="card", status="succeeded") == 0


def test_a_message_back_from_a_retry_tier_adds_no_queue_lag(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    _, message = make_request()
    retried: InboundMessage = dataclasses.replace(
        message, headers={**message.headers, "x-death": [{"count": 1}]}
    )

    worker.handle(retried)

    assert sample(worker.metrics.registry, "paymq_queue_lag_seconds_count", channel="card") == 0


def test_an_expired_payment_counts_as_expired_and_dead_lettered(
    make_request: Callable[..., Any], worker: Worker, clock: FixedClock
) -> None:
    _, message = make_request(
        created_at_ms=clock.now_ms() - 10_000, expires_at_ms=clock.now_ms() - 1
    )

    worker.handle(message)

    registry = worker.metrics.registry
    assert sample(registry, "paymq_payments_total", channel="card", status="expired") == 1
    assert sample(registry, "paymq_dead_lettered_total", channel="card", code="expired") == 1


def test_a_forged_message_counts_as_rejected_and_dead_lettered(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    _, message = make_request()
    forged = dataclasses.replace(message, body=message.body.replace(b"order-1", b"order-2"))

    handled = worker.handle(forged)

    code = handled.result.code
    assert code is not None
    registry = worker.metrics.registry
    assert sample(registry, "paymq_payments_total", channel="card", status="rejected") == 1
    assert sample(registry, "paymq_dead_lettered_total", channel="card", code=code) == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (PaymentDeclined("no funds", code="insufficient_funds"), "declined"),
        (ProviderRejected("bad amount", code="invalid_amount"), "refused"),
        (ProviderUnavailable("refused"), "retryable"),
        (OutcomeUnknown("timed out after sending"), "unknown"),
        (KeyError("a bug"), "error"),
    ],
)
def test_a_provider_call_is_timed_under_how_it_ended(error: Exception | None, outcome: str) -> None:
    metrics = Metrics()

    raised = pytest.raises(type(error)) if error else contextlib.nullcontext()

    with raised, timed_call(metrics, "sandbox", "execute"):
        if error is not None:
            raise error

    registry = metrics.registry
    labels = {"provider": "sandbox", "operation": "execute", "outcome": outcome}
    assert sample(registry, "paymq_provider_call_seconds_count", **labels) == 1


class Reads:
    """The store's answers, one per read, counting reads."""

    def __init__(self, *answers: list[StateCount] | Exception) -> None:
        self.answers = list(answers)
        self.count = 0

    def __call__(self) -> list[StateCount]:
        self.count += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def gauges(reads: Reads, clock: FixedClock) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StoreGauges(reads, clock, channels=("card", "digital_currency"), cache_s=5))
    return registry


def test_store_gauges_show_payments_by_state_and_the_oldest_in_doubt_age() -> None:
    clock = FixedClock(100_000)
    reads = Reads(
        [
            StateCount("card", "succeeded", 7, 1_000),
            StateCount("card", "in_doubt", 2, 40_000),
        ]
    )

    registry = gauges(reads, clock)

    assert sample(registry, "paymq_store_up") == 1
    assert sample(registry, "paymq_stored_payments", channel="card", state="succeeded") == 7
    assert sample(registry, "paymq_in_doubt_payments", channel="card") == 2
    assert sample(registry, "paymq_in_doubt_oldest_age_seconds", channel="card") == 60
    # a channel with nothing in doubt shows 0, so an alert rule sees the series
    assert (
        registry.get_sample_value("paymq_in_doubt_payments", {"channel": "digital_currency"}) == 0
    )


def test_store_gauges_read_the_store_at_most_once_per_cache_period() -> None:
    clock = FixedClock(0)
    first = [StateCount("card", "in_doubt", 1, 0)]
    second = [StateCount("card", "in_doubt", 3, 0)]
    reads = Reads(first, second)
    registry = gauges(reads, clock)

    assert sample(registry, "paymq_in_doubt_payments", channel="card") == 1
    clock.advance(4_999)
    assert sample(registry, "paymq_in_doubt_payments", channel="card") == 1
    clock.advance(1)
    assert sample(registry, "paymq_in_doubt_payments", channel="card") == 3
    assert reads.count == 2


def test_a_store_that_cannot_be_read_shows_as_down_not_as_a_failed_scrape() -> None:
    clock = FixedClock(0)
    registry = gauges(Reads(StoreUnavailable("payment store unavailable")), clock)

    assert sample(registry, "paymq_store_up") == 0
    assert registry.get_sample_value("paymq_in_doubt_payments", {"channel": "card"}) is None


def test_a_gauge_whose_queue_does_not_exist_goes_missing_without_failing_the_scrape() -> None:
    # A setup problem is no payment failure (common/errors.py), yet a scrape survives it too.
    def read() -> int:
        raise ConfigurationError("queue paymq.work.card does not exist")

    assert CachedRead(read, FixedClock(0), cache_s=5)() is None

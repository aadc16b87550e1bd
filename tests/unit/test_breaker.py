"""The circuit breaker, with time moved by hand."""

from __future__ import annotations

import pytest

from common.clock import FixedClock
from workers.providers.breaker import BreakerState, CircuitBreaker


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_000_000)


@pytest.fixture
def breaker(clock: FixedClock) -> CircuitBreaker:
    return CircuitBreaker("stripe", clock, failures_to_open=3, open_ms=30_000)


def test_a_closed_breaker_lets_every_call_through(breaker: CircuitBreaker) -> None:
    assert all(breaker.allow() for _ in range(10))
    assert breaker.state is BreakerState.CLOSED


def test_it_opens_after_the_configured_consecutive_failures(breaker: CircuitBreaker) -> None:
    breaker.failed()
    breaker.failed()
    assert breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_between_failures_starts_the_count_again(breaker: CircuitBreaker) -> None:
    breaker.failed()
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED


def test_after_the_open_time_exactly_one_probe_goes_through(
    breaker: CircuitBreaker, clock: FixedClock
) -> None:
    for _ in range(3):
        breaker.failed()
    clock.advance(29_999)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow(), "the probe"
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow(), "a second call while the probe is in flight"


def test_a_successful_probe_closes_the_breaker(breaker: CircuitBreaker, clock: FixedClock) -> None:
    for _ in range(3):
        breaker.failed()
    clock.advance(30_000)
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_a_failed_probe_opens_it_again_for_another_full_period(
    breaker: CircuitBreaker, clock: FixedClock
) -> None:
    for _ in range(3):
        breaker.failed()
    clock.advance(30_000)
    assert breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    clock.advance(29_999)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_a_probe_that_was_never_made_frees_the_slot_for_another(
    breaker: CircuitBreaker, clock: FixedClock
) -> None:
    for _ in range(3):
        breaker.failed()
    clock.advance(30_000)
    assert breaker.allow()
    breaker.released()
    assert breaker.allow(), "the next call may probe"


def test_nonsense_settings_are_refused(clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="failures_to_open"):
        CircuitBreaker("x", clock, failures_to_open=0, open_ms=1)

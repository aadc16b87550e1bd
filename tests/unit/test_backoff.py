"""The one back-off of every reconnect and retry loop (common/backoff.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.backoff import Backoff, BackoffPolicy
from common.clock import FixedClock

STEADY = BackoffPolicy(initial_s=0.5, cap_s=4.0, jitter=0.0)


def test_the_pause_doubles_from_initial_up_to_the_cap() -> None:
    assert [STEADY.delay_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_cap_below_the_initial_pause_still_bounds_every_pause() -> None:
    policy = BackoffPolicy(initial_s=0.5, cap_s=0.1, jitter=0.0)
    assert policy.delay_s(1) == policy.delay_s(5) == 0.1


def test_a_cap_of_zero_means_no_pause() -> None:
    assert BackoffPolicy(initial_s=0.25, cap_s=0.0).delay_s(3) == 0.0


def test_thousands_of_failures_in_a_row_still_pause_for_the_cap() -> None:
    assert STEADY.delay_s(100_000) == 4.0


@given(failures=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_jitter_takes_off_at_most_its_share_of_the_pause(failures: int, seed: int) -> None:
    policy = BackoffPolicy(initial_s=0.25, cap_s=30.0, jitter=0.5)
    full_s = BackoffPolicy(initial_s=0.25, cap_s=30.0, jitter=0.0).delay_s(failures)
    assert full_s * 0.5 <= policy.delay_s(failures, random.Random(seed)) <= full_s


def test_the_same_random_source_gives_the_same_pauses() -> None:
    policy = BackoffPolicy(initial_s=0.25, cap_s=30.0)
    first = [policy.delay_s(n, random.Random(7)) for n in range(1, 6)]
    assert first == [policy.delay_s(n, random.Random(7)) for n in range(1, 6)]


@pytest.mark.parametrize(
    "arguments",
    [
        {"initial_s": 0.0, "cap_s": 1.0},
        {"initial_s": 1.0, "cap_s": -1.0},
        {"initial_s": 1.0, "cap_s": 2.0, "jitter": 1.5},
        {"initial_s": 1.0, "cap_s": 2.0, "multiplier": 0.5},
        {"initial_s": 1.0, "cap_s": 2.0, "stable_s": -1.0},
    ],
)
def test_a_policy_that_cannot_work_is_refused_when_built(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="a back-off needs"):
        BackoffPolicy(**arguments)


def test_there_is_no_pause_before_the_first_failure() -> None:
    with pytest.raises(ValueError, match="first failure"):
        STEADY.delay_s(0)


def test_failures_in_a_row_grow_the_pause() -> None:
    backoff = Backoff(STEADY, clock=FixedClock(0))
    assert [backoff.next_delay_s() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff.failures == 4


def test_a_success_that_lasted_the_stable_period_starts_again_from_the_initial_pause() -> None:
    clock = FixedClock(0)
    backoff = Backoff(
        BackoffPolicy(initial_s=0.5, cap_s=4.0, jitter=0.0, stable_s=10.0), clock=clock
    )
    backoff.next_delay_s()
    backoff.next_delay_s()
    # Given a connection that then stayed up for the stable period
    backoff.succeeded()
    clock.advance(10_000)
    # When it is lost, the pause is the first one again
    assert backoff.next_delay_s() == 0.5


def test_a_flapping_link_keeps_its_pause_growing() -> None:
    clock = FixedClock(0)
    backoff = Backoff(
        BackoffPolicy(initial_s=0.5, cap_s=4.0, jitter=0.0, stable_s=10.0), clock=clock
    )
    pauses = []
    for _ in range(4):
        # Given connections that open, then die a second later, again and again
        backoff.succeeded()
        clock.advance(1_000)
        pauses.append(backoff.next_delay_s())
    # Then each pause is longer than the one before, up to the cap
    assert pauses == [0.5, 1.0, 2.0, 4.0]


def test_without_a_stable_period_any_success_starts_again_from_the_initial_pause() -> None:
    backoff = Backoff(STEADY, clock=FixedClock(0))
    backoff.next_delay_s()
    backoff.next_delay_s()
    backoff.succeeded()
    assert backoff.next_delay_s() == 0.5


def test_a_success_counts_from_its_first_report_not_its_last() -> None:
    clock = FixedClock(0)
    backoff = Backoff(
        BackoffPolicy(initial_s=0.5, cap_s=4.0, jitter=0.0, stable_s=10.0), clock=clock
    )
    backoff.next_delay_s()
    backoff.succeeded()
    clock.advance(6_000)
    backoff.succeeded()  # told again while still up
    clock.advance(6_000)
    assert backoff.next_delay_s() == 0.5

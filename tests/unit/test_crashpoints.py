"""Stall points: a payment's thread holds still at a step, then goes on (fault injection)."""

from __future__ import annotations

import pytest

from workers.crashpoints import CrashPoints, Stall


def test_every_nth_payment_reaching_a_stall_point_holds_its_thread() -> None:
    slept: list[float] = []
    points = CrashPoints(stall=Stall("after_provider_call", 7.5, every=2), sleep=slept.append)

    for _ in range(5):
        points.reached("after_provider_call", "order-1")
    points.reached("after_store_commit", "order-1")

    assert slept == [7.5, 7.5]


def test_an_unknown_stall_point_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown crash point 'after_lunch'"):
        CrashPoints(stall=Stall("after_lunch", 1.0))

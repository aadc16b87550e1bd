"""The store's health: one log line per stall, the gauge, a pause while it is down; and the
marks of confirmed results, written many per statement and kept while the store is down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection

import pytest

from common.clock import FixedClock
from common.errors import StoreUnavailable
from common.metrics import Metrics
from store.health import StoreHealth
from workers.published import FLUSH_INTERVAL_S, PublishedMarks, flush_interval_s

WAIT_S = 10.0


class Ping:
    def __init__(self) -> None:
        self.down = True
        self.asked = 0

    def __call__(self) -> None:
        self.asked += 1
        if self.down:
            raise StoreUnavailable("payment store unavailable: OperationalError")


def test_a_stall_is_logged_once_and_paused_for_however_many_payments_meet_it(
    caplog: pytest.LogCaptureFixture,
):
    # Given a store health with a listener (the consumer) and a probe that fails
    metrics = Metrics()
    ping = Ping()
    health = StoreHealth(ping, metrics=metrics, probe_interval_s=3600)
    changes: list[bool] = []
    health.listen(changes.append)
    # When forty payments meet the stalled store
    with caplog.at_level(logging.WARNING, logger="paymq.store"):
        for _ in range(40):
            health.failed(StoreUnavailable("payment store unavailable: QueryCanceled"))
        # and then a call succeeds
        health.answered()
        health.answered()
    health.close()
    # Then one line says it stopped, one that it answers again, and the listener heard both
    first, last = (r.getMessage() for r in caplog.records)
    assert first.startswith("payment store unavailable (payment store unavailable: QueryCanceled)")
    assert last.startswith("payment store answers again after ")
    assert changes == [False, True]
    assert metrics.store_stalls._value.get() == 1
    assert metrics.store_stalled._value.get() == 0


def test_the_store_counts_as_answering_only_since_it_came_back():
    clock = FixedClock(1_000_000)
    health = StoreHealth(Ping(), probe_interval_s=3600, clock=clock)
    assert health.answering_since_ms == 1_000_000
    clock.advance(5_000)
    health.failed(StoreUnavailable("down"))
    assert health.answering_since_ms is None
    clock.advance(60_000)
    health.answered()
    assert health.answering_since_ms == 1_065_000
    health.close()


def test_a_stalled_store_is_probed_until_it_answers():
    # Given a stalled store that nothing else calls (the worker stopped consuming)
    ping = Ping()
    health = StoreHealth(ping, probe_interval_s=0.01)
    back = threading.Event()
    health.listen(lambda up: back.set() if up else None)
    health.failed(StoreUnavailable("down"))
    assert not health.up
    # When it answers again, the probe notices by itself
    ping.down = False
    assert back.wait(WAIT_S)
    assert health.up
    health.close()


class Marks:
    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[tuple[str, str]]] = []

    def __call__(self, confirmed: Collection[tuple[str, str]]) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.batches.append(sorted(confirmed))


def test_confirmed_results_are_marked_many_per_statement_and_kept_while_the_store_is_down():
    marks = Marks()
    published = PublishedMarks(marks)
    for n in range(3):
        published.add((f"p{n}", f"e{n}"))
    published.add(("p0", "e0"))  # a repeat confirmed twice is marked once
    marks.down = True
    assert not published.flush()
    assert published.waiting == 3
    marks.down = False
    assert published.flush()
    assert marks.batches == [[("p0", "e0"), ("p1", "e1"), ("p2", "e2")]]
    assert published.waiting == 0


def test_past_its_bound_the_oldest_marks_are_dropped_for_the_sweeper():
    marks = Marks()
    published = PublishedMarks(marks, max_waiting=2)
    for n in range(3):
        published.add((f"p{n}", f"e{n}"))
    published.close()
    assert marks.batches == [[("p1", "e1"), ("p2", "e2")]]


def test_a_long_backlog_of_marks_is_written_in_bounded_statements():
    marks = Marks()
    published = PublishedMarks(marks)
    for n in range(1_000):
        published.add((f"p{n}", f"e{n}"))
    assert published.flush()
    assert [len(batch) for batch in marks.batches] == [400, 400, 200]
    assert published.waiting == 0


@pytest.mark.parametrize(
    ("republish_after_s", "expected_s"), [(0.5, 0.05), (5.0, 0.5), (10.0, 1.0), (3600.0, 1.0)]
)
def test_marks_wait_at_most_a_tenth_of_the_republish_delay_and_a_second(
    republish_after_s: float, expected_s: float
) -> None:
    # A confirmed result is marked long before a reconciler would publish it again, and a
    # worker below capacity writes its marks at most once a second, not five times.
    assert flush_interval_s(republish_after_s) == pytest.approx(expected_s)
    assert expected_s <= FLUSH_INTERVAL_S

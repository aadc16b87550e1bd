"""The dead-link check: a connection silent for two heartbeat intervals is dead."""

from __future__ import annotations

from common.amqp.linkwatch import LinkWatch

HEARTBEAT_S = 5.0


def test_a_connection_that_keeps_receiving_is_never_dead():
    watch = LinkWatch(limit_s=2 * HEARTBEAT_S)
    for tick in range(100):
        # the broker's heartbeat every half interval: bytes move at least every other tick
        assert watch.silent([("publish", tick // 2)], tick * HEARTBEAT_S / 4) == []


def test_a_connection_silent_past_two_intervals_is_dead_within_a_quarter_more():
    # Given a connection that received its last byte at t=0 (then the link went silent)
    watch = LinkWatch(limit_s=2 * HEARTBEAT_S)
    watch.silent([("consume", 900)], 0.0)
    # When the session looks every quarter interval
    found_at = None
    for tick in range(1, 20):
        now_s = tick * HEARTBEAT_S / 4
        if watch.silent([("consume", 900)], now_s):
            found_at = now_s
            break
    # Then it is found dead after two intervals and before 2.25 (pika: up to 2 x (hb + 5 s))
    assert found_at is not None
    assert 2 * HEARTBEAT_S < found_at <= 2.25 * HEARTBEAT_S


def test_a_new_connection_and_one_that_closed_start_and_end_their_watch():
    watch = LinkWatch(limit_s=10.0)
    watch.silent([("old", 5)], 0.0)
    # the old connection is gone; a new one appears with its own count from now on
    assert watch.silent([("new", 0)], 9.0) == []
    assert watch.silent([("new", 0)], 18.0) == []
    assert watch.silent([("new", 0)], 19.5) == [("new", 10.5)]
    # once reported it is forgotten: a connection reopened under the same key starts afresh
    assert watch.silent([("new", 0)], 20.0) == []

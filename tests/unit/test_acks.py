"""AckBatcher: one multiple-ack for a run finished from the oldest delivery, singles otherwise."""

from __future__ import annotations

from common.amqp.acks import AckBatcher


def _batcher(*tags: int) -> AckBatcher:
    batcher = AckBatcher()
    for tag in tags:
        batcher.delivered(tag)
    return batcher


def test_a_run_finished_from_the_oldest_delivery_is_one_multiple_ack():
    batcher = _batcher(1, 2, 3, 4)
    for tag in (2, 1, 3):
        batcher.finished(tag)
    assert batcher.flush() == (3, [])


def test_deliveries_finished_behind_a_slow_one_are_acked_singly_at_once():
    # Given delivery 1 still in flight
    batcher = _batcher(1, 2, 3)
    batcher.finished(2)
    batcher.finished(3)
    # Then 2 and 3 are acked one by one, never by a multiple ack that would cover 1
    assert batcher.flush() == (None, [2, 3])
    # and when 1 finishes later it is acked on its own
    batcher.finished(1)
    assert batcher.flush() == (1, [])


def test_a_rejected_delivery_no_longer_blocks_the_run():
    batcher = _batcher(1, 2)
    batcher.forget(1)
    batcher.finished(2)
    assert batcher.flush() == (2, [])


def test_nothing_finished_means_nothing_to_ack():
    batcher = _batcher(1)
    assert not batcher.pending
    assert batcher.flush() == (None, [])


def test_unknown_tags_are_ignored():
    batcher = _batcher(1)
    batcher.finished(7)
    assert not batcher.pending

"""Acks in as few frames as the broker's rules allow: pure, no pika.

An ack with `multiple` acknowledges every delivery up to its tag on the channel, so it may only
be used for a run of finished deliveries starting at the oldest unacked one; anything finished
out of order is acked on its own, at once, so a slow payment never holds back the others (nor
the prefetch window they occupy).
"""

from __future__ import annotations


class AckBatcher:
    def __init__(self) -> None:
        # Delivery tags in delivery order (dicts keep insertion order).
        self._unacked: dict[int, None] = {}
        self._finished: set[int] = set()

    def delivered(self, tag: int) -> None:
        self._unacked[tag] = None

    def finished(self, tag: int) -> None:
        if tag in self._unacked:
            self._finished.add(tag)

    def forget(self, tag: int) -> None:
        """The delivery was rejected (or requeued) by other means."""
        self._unacked.pop(tag, None)
        self._finished.discard(tag)

    @property
    def pending(self) -> bool:
        return bool(self._finished)

    def flush(self) -> tuple[int | None, list[int]]:
        """(tag for one `multiple` ack or None, tags to ack one by one); forgets them all."""
        up_to = None
        while self._unacked:
            oldest = next(iter(self._unacked))
            if oldest not in self._finished:
                break
            del self._unacked[oldest]
            self._finished.discard(oldest)
            up_to = oldest
        singles = sorted(self._finished)
        for tag in singles:
            del self._unacked[tag]
        self._finished.clear()
        return up_to, singles

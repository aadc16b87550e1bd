"""Time as an argument: logic takes a `Clock`, only entry points build the system one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class MonotonicClock:
    """Milliseconds that never jump with the wall clock: for measuring waits, not for dates."""

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class FixedClock:
    """A clock that only moves when told to; for tests and reproducible vectors."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, delta_ms: int) -> None:
        self._now_ms += delta_ms


def to_ms(moment: datetime) -> int:
    """Exact milliseconds since the epoch; sub-millisecond parts are truncated."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + (delta.microseconds // 1000)


def from_ms(timestamp_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=timestamp_ms)


def rfc3339(timestamp_ms: int) -> str:
    """An instant as people and API callers read it: RFC 3339, UTC, to the millisecond, e.g.
    2026-12-03T10:11:12.345Z (what the store's milliseconds hold, no more)."""
    return f"{from_ms(timestamp_ms):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"

"""When a webhook delivery is tried again. Pure: the caller passes the clock's reading.

Attempt 1 goes at once; after attempt n fails, attempt n+1 is due `schedule_s[n-1]` later; when
the attempt after the last delay fails too, the delivery is given up.
"""

from __future__ import annotations

from collections.abc import Sequence


def max_attempts(schedule_s: Sequence[float]) -> int:
    return len(schedule_s) + 1


def next_attempt_ms(attempts_made: int, now_ms: int, schedule_s: Sequence[float]) -> int | None:
    """When to try again after `attempts_made` failed attempts; None: give up."""
    if attempts_made < 1:
        raise ValueError("attempts_made counts the attempt that just failed: at least 1")
    if attempts_made > len(schedule_s):
        return None
    return now_ms + round(schedule_s[attempts_made - 1] * 1000)

"""The recovery figure: the longest time without a result event while a fault lasted. Pure.

For each fault's span (from the moment it struck to the moment the cluster was whole again),
the gaps are measured from its start to the first result event after it, between the events
within it, and up to the first event after its end: a fault that stalls results for 12 s shows
12 s, whenever in the span the stall fell. Gaps after the last event of the run are not
counted: there was nothing left to deliver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def longest_gap_s(arrivals: Iterable[float], spans: Sequence[tuple[float, float]]) -> float | None:
    """Seconds, rounded to 0.1; None when no fault recorded a span."""
    if not spans:
        return None
    times = sorted(arrivals)
    longest = 0.0
    for start, end in spans:
        previous = start
        for arrived in times:
            if arrived <= start:
                continue
            longest = max(longest, arrived - previous)
            if arrived > end:
                break
            previous = arrived
    return round(longest, 1)

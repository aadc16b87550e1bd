"""Which connections have gone silent: pure bookkeeping for the session's dead-link check.

RabbitMQ sends a heartbeat frame every half interval on an idle connection, so a connection
that has received no byte at all for two intervals has lost its link, whatever the kernel
still believes. pika's own check needs up to two intervals plus ten seconds; a session calls
`silent()` every quarter interval, which bounds the detection at 2.25 intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class LinkWatch:
    #: Silence longer than this means the link is dead.
    limit_s: float
    #: Per watched connection: the byte count last seen, and since when it has not moved.
    _seen: dict[object, tuple[int, float]] = field(default_factory=dict)

    def silent(
        self, received: Iterable[tuple[object, int]], now_s: float
    ) -> list[tuple[object, float]]:
        """Given (connection, bytes received so far) for every open connection, the ones
        silent past the limit, with how long; they are forgotten (a new one starts afresh)."""
        dead: list[tuple[object, float]] = []
        current: dict[object, tuple[int, float]] = {}
        for key, count in received:
            seen, since = self._seen.get(key, (-1, now_s))
            if count != seen:
                current[key] = (count, now_s)
            elif now_s - since > self.limit_s:
                dead.append((key, now_s - since))
            else:
                current[key] = (seen, since)
        self._seen = current
        return dead

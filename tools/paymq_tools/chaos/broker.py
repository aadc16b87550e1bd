"""What a scenario runs against: one private node (node.py) or a private cluster (cluster.py).

The runner, the suite and the broker-wide disturbances (restarts, forced closes, alarms) take
either through this one interface; faults of a cluster's own (a node killed, a partition,
leaders moved) take the cluster itself (clusterfaults.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from paymq_tools.chaos.nodectl import QueueDepth


class Broker(Protocol):
    #: What clients are given: one AMQP URL, or a cluster's comma-separated list of them.
    url: str

    @property
    def port(self) -> int:
        """The AMQP port a link proxy forwards to (links are a single node's)."""
        ...

    def queue_depths(self, prefix: str = "") -> list[QueueDepth]: ...

    def restart(self) -> None:
        """Every node restarted (a cluster's one after another), on the same data."""

    def close_all_connections(self, reason: str = "paymq chaos") -> None: ...

    def set_memory_high_watermark(self, fraction: float) -> None: ...

    def set_disk_free_limit(self, limit: str) -> None: ...

    def app_settings(self, settings: Mapping[str, int]) -> AbstractContextManager[None]: ...

"""Things that go wrong during a run, each on its own schedule in its own thread.

A disturbance acts on the `Stage` (the private broker, the worker crew, the links and the
store) during the publishing window, and stops when told or when its schedule is done.
Schedules are in fractions of the window or in seconds, so a run of any size sees the same
faults. Link, store and cluster faults live in linkfaults.py, storefaults.py and
clusterfaults.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # only the runner needs the machinery; the scenario table stays light
    from paymq_tools.chaos.broker import Broker
    from paymq_tools.chaos.cluster import PrivateCluster
    from paymq_tools.chaos.crew import Crew
    from paymq_tools.chaos.linkproxy import LinkProxy
    from paymq_tools.chaos.postgres import PrivatePostgres
    from paymq_tools.processes import Fleet

logger = logging.getLogger("paymq.chaos")


@dataclass
class Stage:
    #: The private node, or the private cluster of a cluster scenario.
    broker: Broker
    crew: Crew
    window_s: float
    #: The same broker when it is a private cluster, for the cluster faults.
    cluster: PrivateCluster | None = None
    #: The run's topology prefix: the queues a cluster fault waits for and moves.
    topology_prefix: str = ""
    #: The link proxies between the workers and what they reach: "broker", "store".
    links: Mapping[str, LinkProxy] = field(default_factory=dict)
    #: The run's private PostgreSQL server, when the store is on one.
    postgres: PrivatePostgres | None = None
    #: The run's SQLite store file, when the store is one.
    sqlite_file: Path | None = None
    #: Starts helper processes (another holder of the store's lock) beside the run's services.
    helpers: Fleet | None = None
    #: Set when the run is abandoned (Ctrl-C, a harness error): faults that hold for a while
    #: end at once, healing what they broke, instead of running to their end.
    aborted: threading.Event = field(default_factory=threading.Event)
    #: What the disturbances did, by kind (restarts, closes, alarms).
    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    #: When faults that take time to heal began and ended (monotonic seconds), for the
    #: recovery figure (recovery.py).
    spans: list[tuple[float, float]] = field(default_factory=list)


class Disturbance(Protocol):
    def describe(self) -> str: ...

    def run(self, stage: Stage, stop: threading.Event) -> None:
        """Act on the stage until `stop` is set or the schedule is over."""


@dataclass(frozen=True)
class KillWorkers:
    """SIGKILL a random worker every `every_s` seconds; the crew starts a replacement."""

    every_s: float

    def describe(self) -> str:
        return f"SIGKILL a random worker every {self.every_s:g} s"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            stage.crew.kill_random()


@dataclass(frozen=True)
class RestartBroker:
    """Stop the whole node and start it again, at these fractions of the window."""

    at: tuple[float, ...] = (0.3, 0.6)

    def describe(self) -> str:
        return "restart the broker at " + ", ".join(f"{a:.0%}" for a in self.at)

    def run(self, stage: Stage, stop: threading.Event) -> None:
        # Every restart happens, even when a slow one pushed the next past the end of the
        # publishing window: the run then settles after it.
        began = time.monotonic()
        for fraction in self.at:
            stop.wait(max(0.0, began + fraction * stage.window_s - time.monotonic()))
            stage.broker.restart()
            stage.done["broker restarts"] += 1


@dataclass(frozen=True)
class CloseConnections:
    """`rabbitmqctl close_all_connections` every `every_s` seconds: every client at once."""

    every_s: float

    def describe(self) -> str:
        return f"close every connection every {self.every_s:g} s"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            stage.broker.close_all_connections("paymq chaos: forced close")
            stage.done["connection closes"] += 1


@dataclass(frozen=True)
class MemoryAlarm:
    """Raise the memory alarm (publishers are blocked) for `hold_s`, at a fraction of the
    window."""

    at: float = 0.4
    hold_s: float = 4.0

    def describe(self) -> str:
        return f"memory alarm for {self.hold_s:g} s at {self.at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        if stop.wait(self.at * stage.window_s):
            return
        stage.broker.set_memory_high_watermark(0.0000001)
        stage.done["memory alarms"] += 1
        try:
            stop.wait(self.hold_s)
        finally:
            stage.broker.set_memory_high_watermark(0.4)


@dataclass(frozen=True)
class DiskAlarm:
    """Raise the disk alarm (publishers are blocked) for `hold_s`, at a fraction of the
    window, by asking for more free disk space than any disk has."""

    at: float = 0.4
    hold_s: float = 4.0

    def describe(self) -> str:
        return f"disk alarm for {self.hold_s:g} s at {self.at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        if stop.wait(self.at * stage.window_s):
            return
        stage.broker.set_disk_free_limit("1000000GB")
        stage.done["disk alarms"] += 1
        try:
            stop.wait(self.hold_s)
        finally:
            stage.broker.set_disk_free_limit("50MB")


class Disturber:
    """Runs the disturbances of a scenario in background threads."""

    def __init__(self, stage: Stage, disturbances: tuple[Disturbance, ...]) -> None:
        self._stage = stage
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guarded, args=(d,), name="chaos-disturbance", daemon=True)
            for d in disturbances
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop every schedule; broker restarts still due happen now, and are waited for."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _guarded(self, disturbance: Disturbance) -> None:
        try:
            disturbance.run(self._stage, self._stop)
        except Exception as exc:  # a disturbance that fails must not end the run unnoticed
            logger.exception("disturbance %s failed", disturbance.describe())
            self._stage.errors.append(f"{disturbance.describe()}: {exc}")

"""Faults of the network between the workers and what they reach, made by the run's link
proxies (linkproxy.py): links that flap, and partitions. Each acts on one named link of the
stage: "broker" (workers to the private node) or "store" (workers to a private PostgreSQL).

A fault, once begun, runs for its whole length and always ends with the link healthy, even
when the publishing window is over meanwhile: the run then settles after it. Only a run that is
abandoned (Ctrl-C) cuts it short.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from paymq_tools.chaos.disturbances import Stage


@dataclass(frozen=True)
class FlapLink:
    """Every connection on the link, existing or new, is reset after `after_bytes` more bytes,
    cutting the chunk in flight (connections die mid-frame, again and again), for `hold_s`;
    `times` times, with `gap_s` of healthy link in between, from `start_at` of the window."""

    link: str = "broker"
    after_bytes: int = 4096
    hold_s: float = 15.0
    times: int = 2
    gap_s: float = 3.0
    start_at: float = 0.1

    def describe(self) -> str:
        return (
            f"the {self.link} link resets every connection after {self.after_bytes} bytes, "
            f"for {self.hold_s:g} s, {self.times} times"
        )

    def run(self, stage: Stage, stop: threading.Event) -> None:
        proxy = stage.links[self.link]
        stop.wait(self.start_at * stage.window_s)
        if stage.aborted.is_set():
            return
        for flap in range(self.times):
            if flap:
                stage.aborted.wait(self.gap_s)
            proxy.reset_after(self.after_bytes)
            stage.done["link flaps"] += 1
            try:
                stage.aborted.wait(self.hold_s)
            finally:
                proxy.pass_through()


@dataclass(frozen=True)
class PartitionLink:
    """The link is blackholed for `hold_s` at `at` of the window: nothing arrives either way
    and nothing closes. Then it heals by forwarding again (linkproxy.py): a peer that gave up
    meanwhile shows its close only then."""

    link: str = "broker"
    hold_s: float = 8.0
    at: float = 0.3

    def describe(self) -> str:
        return f"the {self.link} link is blackholed for {self.hold_s:g} s at {self.at:.0%}"

    def run(self, stage: Stage, stop: threading.Event) -> None:
        proxy = stage.links[self.link]
        stop.wait(self.at * stage.window_s)
        if stage.aborted.is_set():
            return
        proxy.blackhole()
        stage.done["partitions"] += 1
        try:
            stage.aborted.wait(self.hold_s)
        finally:
            proxy.pass_through()

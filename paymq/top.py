"""`paymq top`: a live view for people. Every second: payments finished per second, the depth
and consumers of every queue of the topology, payments by state, and the oldest in-doubt
payments. `--once --json` prints one frame for scripts."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from common.amqp.admin import BrokerAdmin
from common.clock import SystemClock
from common.models import PaymentStatus
from common.settings import Settings
from common.topology import Topology
from store.database import engine_for, require_current
from store.views import PaymentViews

console = Console(highlight=False)
_TERMINAL = {status.value for status in PaymentStatus if status.terminal}


@dataclass(frozen=True)
class Frame:
    at_ms: int
    #: name -> (messages ready, consumers)
    queues: dict[str, tuple[int, int]]
    states: dict[str, int]
    in_doubt: list[dict[str, Any]]

    @property
    def finished(self) -> int:
        return sum(count for state, count in self.states.items() if state in _TERMINAL)


def per_second(previous: Frame | None, current: Frame) -> float | None:
    """Payments that reached a final state per second between two frames."""
    if previous is None or current.at_ms <= previous.at_ms:
        return None
    return (current.finished - previous.finished) * 1000 / (current.at_ms - previous.at_ms)


def take_frame(admin: BrokerAdmin, engine: Any, topology: Topology) -> Frame:
    now_ms = SystemClock().now_ms()
    queues = {}
    for queue in topology.queues():
        stats = admin.stats(queue.name)
        queues[queue.name] = (stats.messages, stats.consumers)
    overview = PaymentViews(engine).overview(now_ms=now_ms)
    return Frame(now_ms, queues, overview["states"], overview["in_doubt"])


def render(frame: Frame, rate: float | None) -> Group:
    shown = "-" if rate is None else f"{rate:.1f}"
    queues = Table(title=f"queues   (payments finished per second: {shown})")
    for column in ("queue", "ready", "consumers"):
        queues.add_column(column)
    for name, (ready, consumers) in frame.queues.items():
        queues.add_row(name, str(ready), str(consumers))
    states = Table(title="payments by state")
    states.add_column("state")
    states.add_column("count")
    for state, count in sorted(frame.states.items()):
        states.add_row(state, str(count))
    doubt = Table(title="in doubt, oldest first")
    for column in ("payment", "channel", "provider", "code", "checks", "for s", "next check s"):
        doubt.add_column(column)
    for row in frame.in_doubt:
        doubt.add_row(*(str(value) for value in row.values()))
    return Group(queues, states, doubt)


def run_top(settings: Settings, *, interval_s: float, once: bool, as_json: bool) -> None:
    engine = engine_for(settings.store, pool_size=1)
    topology = settings.broker.topology()
    try:
        require_current(engine)
        with BrokerAdmin(settings.broker.amqp_url, name="paymq-top") as admin:
            frame = take_frame(admin, engine, topology)
            if once:
                if as_json:
                    print(json.dumps(asdict(frame)))
                else:
                    console.print(render(frame, None))
                return
            previous = None
            with Live(render(frame, None), console=console, refresh_per_second=4) as live:
                while True:
                    time.sleep(interval_s)
                    previous, frame = frame, take_frame(admin, engine, topology)
                    live.update(render(frame, per_second(previous, frame)))
    except KeyboardInterrupt:
        return
    finally:
        engine.dispose()

"""The worker processes of a run, kept at strength the way a process supervisor would: a worker
that dies (SIGKILLed by a disturbance, or crashing at a crash point) is replaced at once.

Each worker is its own process group (`start_new_session`), so a kill reaches the whole worker
and nothing else; every worker ever started is stopped and reaped at the end.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from paymq_tools.processes import Fleet

#: Exit status of a worker that reached its crash point (os._exit(137), as if SIGKILLed).
CRASH_EXIT = 137
#: Exit status of `paymq worker` when no broker answers at start-up: a replacement started
#: while the broker restarts. The crew starts another one a second later.
NO_BROKER_AT_START_EXIT = 2
#: Lines of a worker's log kept when it died unexpectedly.
LAST_WORDS_LINES = 12
SUPERVISE_INTERVAL_S = 0.2
#: A replacement that cannot start (the broker is down) is retried no faster than this.
RESTART_BACKOFF_S = 1.0


@dataclass
class _Slot:
    channel: str
    index: int
    generation: int = 0
    name: str = ""
    not_before: float = 0.0


@dataclass
class CrewTally:
    kills: int = 0
    crashes: int = 0
    #: Other exits: e.g. a replacement that found the broker down while it restarted.
    other_exits: Counter[int] = field(default_factory=Counter)
    started: int = 0
    #: The end of the log of each worker that died by itself of something unexpected (not a
    #: crash point, not a broker down at start): what a failed run must show to be understood.
    last_words: list[str] = field(default_factory=list)


class Crew:
    def __init__(self, fleet: Fleet, layout: Mapping[str, int], rng: random.Random) -> None:
        self._fleet = fleet
        self._slots = [_Slot(ch, i) for ch, n in layout.items() for i in range(n)]
        self._rng = rng
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="chaos-crew", daemon=True)
        #: Workers whose end is already counted (killed by us, or seen dead).
        self._accounted: set[int] = set()
        self.tally = CrewTally()

    @property
    def size(self) -> int:
        return len(self._slots)

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._launch(slot)

    def supervise(self) -> None:
        """From now on, replace every worker that dies."""
        self._thread.start()

    def kill_random(self) -> str | None:
        """SIGKILL one running worker (its supervisor replaces it); the name of the victim."""
        with self._lock:
            alive = [s for s in self._slots if self._process(s).poll() is None]
            if not alive:
                return None
            victim = self._rng.choice(alive)
            process = self._process(victim)
            self._accounted.add(process.pid)
            kill_group(process)
            self.tally.kills += 1
            return victim.name

    def stop_supervising(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    # --- supervisor thread --------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.wait(SUPERVISE_INTERVAL_S):
            with self._lock:
                for slot in self._slots:
                    self._replace_if_dead(slot)

    def _replace_if_dead(self, slot: _Slot) -> None:
        process = self._process(slot)
        code = process.poll()
        if code is None:
            return
        if process.pid not in self._accounted:  # died by itself: count how
            self._accounted.add(process.pid)
            if code == CRASH_EXIT:
                self.tally.crashes += 1
            else:
                self.tally.other_exits[code] += 1
            if code not in (CRASH_EXIT, NO_BROKER_AT_START_EXIT):
                self.tally.last_words.append(f"{slot.name} (status {code}): {self._tail(slot)}")
        if time.monotonic() >= slot.not_before and not self._stop.is_set():
            self._launch(slot)

    # --- details ------------------------------------------------------------------------------

    def _launch(self, slot: _Slot) -> None:
        slot.generation += 1
        slot.name = f"worker-{slot.channel}-{slot.index}.{slot.generation}"
        slot.not_before = time.monotonic() + RESTART_BACKOFF_S
        self._fleet.start(slot.name, "worker", slot.channel)
        self.tally.started += 1

    def _process(self, slot: _Slot) -> subprocess.Popen[bytes]:
        return self._fleet.processes[slot.name]

    def _tail(self, slot: _Slot) -> str:
        log = self._fleet.log_dir / f"{slot.name}.log"
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(no log: {exc})"
        return " | ".join(lines[-LAST_WORDS_LINES:])


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a child started with start_new_session, while the child
    is not yet reaped (so its pid, the group's id, cannot belong to anyone else)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

"""How the kernel schedules a worker's threads: as a batch process (the default), or as any other.

Why (docs/performance.md, "Wake-ups that cost the GIL"): a worker's payment passes between its
threads many times (the connection's thread, a pool thread, the store writer, back), and each
pass wakes the next thread while the waker still holds the GIL: settling a store answer,
submitting to the pool, publishing a result. Under Linux's default policy a woken thread may
preempt the one that woke it, on the spot; the waker is then descheduled holding the GIL, and
the woken thread, which needs the GIL too, can only wait for it to run again. Under
`SCHED_BATCH` a woken thread never preempts a running one (it runs on the next free CPU, or
when the running one's slice ends), so the waker lets the GIL go itself. `paymq bench` measured
half the involuntary context switches per payment (2.4 against 4.6 at saturation), 0-11% less
worker CPU per payment over five pairs, and no cost in latency below capacity
(docs/performance.md).

The policy is the kernel's own, for "non-interactive, CPU-intensive" processes; it changes
nothing about priority (the nice value) and needs no privilege. Elsewhere than Linux the setting
is reported and left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Scheduling = Literal["batch", "normal"]

_TASKS = Path("/proc/self/task")


def schedule_threads(scheduling: Scheduling) -> str | None:
    """Put every thread of this process under `scheduling` now; threads they start later
    inherit it. Returns why it could not, or None."""
    batch = getattr(os, "SCHED_BATCH", None)
    normal = getattr(os, "SCHED_OTHER", None)
    if batch is None or normal is None or not _TASKS.is_dir():
        return "scheduling policies are Linux's; left as they are"
    policy = batch if scheduling == "batch" else normal
    for task in _TASKS.iterdir():
        try:
            os.sched_setscheduler(int(task.name), policy, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError as exc:  # refused by a sandbox (seccomp), say
            return f"the kernel refused {scheduling} scheduling: {exc.strerror}"
    return None

"""A worker's threads are scheduled as a batch process, all of them: those running when the
policy is set and those started after (common/scheduling.py). Each case runs in a process of
its own, so the test run keeps its own policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="scheduling policies are Linux's")

PROGRAM = """
import json, os, sys, threading
from common.scheduling import schedule_threads

def policy_of(thread):
    return os.sched_getscheduler(thread.native_id)

if sys.argv[2:]:  # as if started under another policy (its threads inherit it)
    os.sched_setscheduler(0, getattr(os, sys.argv[2]), os.sched_param(0))
stop = threading.Event()
before = threading.Thread(target=stop.wait)
before.start()
refused = schedule_threads(sys.argv[1])
after = threading.Thread(target=stop.wait)
after.start()
seen = {
    "refused": refused,
    "main": policy_of(threading.main_thread()),
    "before": policy_of(before),
    "after": policy_of(after),
}
stop.set()
print(json.dumps(seen))
"""


def policies(scheduling: str, *, started_as: str | None = None) -> dict[str, object]:
    command = [sys.executable, "-c", PROGRAM, scheduling]
    if started_as is not None:
        command.append(started_as)
    ran = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(ran.stdout))


def test_batch_puts_every_thread_under_sched_batch_those_before_and_those_after():
    seen = policies("batch")
    assert seen == {
        "refused": None,
        "main": os.SCHED_BATCH,
        "before": os.SCHED_BATCH,
        "after": os.SCHED_BATCH,
    }


def test_normal_puts_every_thread_back_under_sched_other_even_when_started_as_batch():
    seen = policies("normal", started_as="SCHED_BATCH")
    assert seen == {
        "refused": None,
        "main": os.SCHED_OTHER,
        "before": os.SCHED_OTHER,
        "after": os.SCHED_OTHER,
    }

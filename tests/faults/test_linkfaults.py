"""Link faults on a real link proxy (no upstream needed): they break the link for their
length, always heal it, and heal it at once when the run is abandoned."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from paymq_tools.chaos.disturbances import Stage
from paymq_tools.chaos.linkfaults import FlapLink, PartitionLink
from paymq_tools.chaos.linkproxy import LinkProxy, Mode

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def link() -> Iterator[LinkProxy]:
    with LinkProxy("127.0.0.1", 9, name="broker") as proxy:  # nothing is ever forwarded
        yield proxy


def stage_with(link: LinkProxy) -> Stage:
    nothing = cast(Any, None)  # these faults touch neither the broker nor the crew
    return Stage(nothing, nothing, window_s=1.0, links={"broker": link})


def modes_while(run: threading.Thread, link: LinkProxy) -> list[Mode]:
    """Every mode the link went through while `run` ran (polled)."""
    seen = [link.mode]
    run.start()
    while run.is_alive():
        if link.mode is not seen[-1]:
            seen.append(link.mode)
        time.sleep(0.01)
    if link.mode is not seen[-1]:
        seen.append(link.mode)
    return seen


def test_a_flapping_link_resets_after_bytes_for_each_flap_and_ends_healthy(
    link: LinkProxy,
) -> None:
    stage = stage_with(link)
    flap = FlapLink("broker", after_bytes=100, hold_s=0.3, times=2, gap_s=0.3, start_at=0.0)
    run = threading.Thread(target=flap.run, args=(stage, threading.Event()))

    seen = modes_while(run, link)

    assert seen == [Mode.PASS, Mode.RESET_AFTER_BYTES, Mode.PASS, Mode.RESET_AFTER_BYTES, Mode.PASS]
    assert stage.done["link flaps"] == 2


def test_an_abandoned_run_heals_a_partition_at_once(link: LinkProxy) -> None:
    stage = stage_with(link)
    partition = PartitionLink("broker", hold_s=60.0, at=0.0)
    run = threading.Thread(target=partition.run, args=(stage, threading.Event()))
    run.start()
    deadline = time.monotonic() + 5
    while link.mode is not Mode.BLACKHOLE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.mode is Mode.BLACKHOLE

    stage.aborted.set()
    run.join(timeout=5)

    assert not run.is_alive()
    assert link.mode is Mode.PASS
    assert stage.done["partitions"] == 1

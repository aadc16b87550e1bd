"""The scenario table holds together: every fault acts on something its scenario runs, and the
timings of the stale claim make the interleaving it is about happen. Pure: no processes."""

from __future__ import annotations

import pytest

from paymq_tools.chaos.clusterfaults import KillNode, MoveLeaders, PartitionNode, RollingRestart
from paymq_tools.chaos.linkfaults import FlapLink, PartitionLink
from paymq_tools.chaos.scenario import Scenario, StallPlan
from paymq_tools.chaos.scenarios import SCENARIOS, by_name
from paymq_tools.chaos.services import CLAIM_LEASE_S
from paymq_tools.chaos.storefaults import LockSqlite, StopDatabase


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_fault_acts_on_something_its_scenario_runs(scenario: Scenario) -> None:
    upstreams = {"broker", "store"} if scenario.private_postgres else {"broker"}
    assert set(scenario.links) <= upstreams
    for fault in scenario.disturbances:
        if isinstance(fault, FlapLink | PartitionLink):
            assert fault.link in scenario.links
        if isinstance(fault, StopDatabase):
            assert scenario.private_postgres
        if isinstance(fault, LockSqlite):
            assert not scenario.private_postgres  # the run's SQLite file
        if isinstance(fault, KillNode | RollingRestart | PartitionNode | MoveLeaders):
            assert scenario.cluster


def test_cluster_scenarios_keep_the_store_on_postgresql_and_have_no_link_proxies() -> None:
    clustered = [s for s in SCENARIOS if s.cluster]

    assert {s.name for s in clustered} == {
        "node-kill",
        "rolling-restart",
        "minority-partition",
        "leader-moves",
    }
    assert all(s.postgres and not s.links for s in clustered)


def test_a_cluster_scenario_with_a_link_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="link proxies"):
        Scenario(name="x", summary="x", cluster=True, links=("broker",))


def test_stalls_are_spread_by_the_pace_like_crashes() -> None:
    plan = StallPlan("after_provider_call", seconds=8.0, every_s=1.5)

    env = plan.env(rate_per_s=100 / 6, workers=2)

    assert env == {
        "PAYMQ_STALL_AT": "after_provider_call",
        "PAYMQ_STALL_S": "8",
        "PAYMQ_STALL_EVERY": "13",
    }


def test_stale_claim_wakes_the_stalled_thread_during_the_takeovers_provider_call() -> None:
    [scenario] = by_name(["stale-claim"])
    assert scenario.stall is not None
    stall_s, call_s = scenario.stall.seconds, scenario.provider_latency_ms / 1000
    timeout_s = scenario.node_settings["consumer_timeout"] / 1000
    tick_s = scenario.node_settings["channel_tick_interval"] / 1000

    # The claim is taken at delivery; the broker takes the delivery back at timeout (+ a tick),
    # by then the lease has run out, so the redelivery takes the claim over ...
    assert timeout_s > CLAIM_LEASE_S
    assert stall_s > CLAIM_LEASE_S
    # ... and calls the provider for call_s, while the stalled thread wakes at call + stall:
    # after the takeover began, before it ends, with room for the tick and a reconnection.
    assert timeout_s + tick_s < call_s + stall_s < timeout_s + call_s
    # A provider call neither times out nor outlives the consumer timeout: only stalls do.
    read_timeout_s = scenario.settings["provider_read_timeout_s"]
    assert isinstance(read_timeout_s, float)
    assert call_s < read_timeout_s
    assert call_s < timeout_s

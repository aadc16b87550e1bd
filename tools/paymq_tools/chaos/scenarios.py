"""The scenarios: what runs (workers, settings), what the provider does wrong, and what
happens to the processes and the broker while payments flow. Data only; runner.py runs them.

Whatever the scenario, the checker demands the same: nothing lost, no duplicated effect, no
conflicting results, nothing stuck (docs/faults.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from paymq_tools.chaos.clusterfaults import KillNode, MoveLeaders, PartitionNode, RollingRestart
from paymq_tools.chaos.disturbances import (
    CloseConnections,
    DiskAlarm,
    Disturbance,
    KillWorkers,
    MemoryAlarm,
    RestartBroker,
)
from paymq_tools.chaos.faults import POISON_PREFIX, Fault, FaultShare
from paymq_tools.chaos.linkfaults import FlapLink, PartitionLink
from paymq_tools.chaos.storefaults import LockSqlite, StopDatabase

CRASH_POINTS = ("after_provider_call", "after_store_commit", "after_result_publish", "before_ack")
#: A worker at a crash point lives about this long, whatever the publishing pace: it crashes on
#: every n-th payment reaching the point, n = its share of the pace times this.
CRASH_LIFETIME_S = 4.0
MIN_CRASH_EVERY = 10
#: A flapping link resets each connection after this many bytes: past the AMQP handshake (so
#: connections open and consume), within the first deliveries (so they die mid-frame).
FLAP_AFTER_BYTES = 4096


def crash_every(rate_per_s: float, workers: int) -> int:
    return max(MIN_CRASH_EVERY, math.ceil(rate_per_s * CRASH_LIFETIME_S / max(1, workers)))


@dataclass(frozen=True)
class StallPlan:
    """Worker threads hold still at `point` for `seconds` (PAYMQ_STALL_AT, see
    workers/crashpoints.py), on every n-th payment reaching it, n chosen from the pace so that
    each worker stalls about every `every_s` seconds."""

    point: str
    seconds: float
    every_s: float

    def env(self, rate_per_s: float, workers: int) -> dict[str, str]:
        every = max(1, math.ceil(rate_per_s * self.every_s / max(1, workers)))
        return {
            "PAYMQ_STALL_AT": self.point,
            "PAYMQ_STALL_S": f"{self.seconds:g}",
            "PAYMQ_STALL_EVERY": str(every),
        }


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    #: Worker processes per channel.
    layout: Mapping[str, int] = field(default_factory=lambda: {"card": 2, "digital_currency": 1})
    #: Settings for every process of the run, by field name (`Settings.replace` of the base).
    settings: Mapping[str, object] = field(default_factory=dict)
    #: Extra environment for the worker processes only.
    worker_env: Mapping[str, str] = field(default_factory=dict)
    #: Workers exit (status 137) at this step of a payment (PAYMQ_CRASH_AT), about every
    #: CRASH_LIFETIME_S seconds each.
    crash_at: str | None = None
    #: Long enough that payments are in flight when a disturbance strikes.
    provider_latency_ms: int = 100
    faults: tuple[FaultShare, ...] = ()
    #: Share of payments (payouts) the provider answers `pending` and settles 2 s later.
    settles_later: float = 0.0
    #: Share of payments that kill every worker that takes them (POISON_PREFIX).
    poison: float = 0.0
    #: Every payment is published this many times in a row (same message, same bytes).
    copies: int = 1
    #: Card payments are routed sandbox > stripe, Stripe's API being localstripe; its
    #: succeeded PaymentIntents count as effects beside the sandbox's ledger.
    stripe: bool = False
    #: Payouts go on chain: anvil (a block a second), one hot wallet shared by every worker,
    #: 60% of the payments ETH payouts; the destinations' balances count the transfers.
    chain: bool = False
    #: What the workers reach through a link proxy that faults break: "broker" (the private
    #: node), "store" (the private PostgreSQL). The producer, the reconciler and the result
    #: collector always connect directly.
    links: tuple[str, ...] = ()
    #: The store on a private PostgreSQL server started for the run, which faults may stop.
    private_postgres: bool = False
    #: Settings of the private node (the rabbit application's) for this run only, e.g. a
    #: short consumer_timeout; the previous values come back when the run ends.
    node_settings: Mapping[str, int] = field(default_factory=dict)
    stall: StallPlan | None = None
    #: On a private cluster of three nodes (cluster.py) instead of the single node; clients
    #: get the list of the three nodes' URLs. Link proxies stand for one node's link: a
    #: cluster scenario has none.
    cluster: bool = False
    #: The store on PostgreSQL: the server of --postgres-url, or a private one started for
    #: the run when none is given.
    postgres: bool = False
    #: Publishing lasts at least this long (default: the runner's minimum), so that payments
    #: flow through a fault that takes long to heal.
    min_window_s: float | None = None
    disturbances: tuple[Disturbance, ...] = ()

    def __post_init__(self) -> None:
        if self.cluster and self.links:
            raise ValueError(f"{self.name}: link proxies are a single node's, not a cluster's")

    def describe(self) -> str:
        parts = [self.summary, *(d.describe() for d in self.disturbances)]
        return "; ".join(parts)

    def worker_environment(self, rate_per_s: float) -> dict[str, str]:
        env = dict(self.worker_env)
        if self.crash_at is not None:
            every = crash_every(rate_per_s, sum(self.layout.values()))
            env.update(PAYMQ_CRASH_AT=self.crash_at, PAYMQ_CRASH_EVERY=str(every))
        if self.stall is not None:
            env.update(self.stall.env(rate_per_s, sum(self.layout.values())))
        return env


def _crash(point: str) -> Scenario:
    return Scenario(
        name=f"crash-{point.replace('_', '-')}",
        summary=f"each worker exits (status 137) at {point}, about every "
        f"{CRASH_LIFETIME_S:g} s, and is replaced",
        crash_at=point,
    )


_PROVIDER_FAULTS = (
    FaultShare(0.08, Fault("error_after_effect", status=500)),
    FaultShare(0.04, Fault("error_after_effect", times=2, status=502)),
    FaultShare(0.04, Fault("error_after_effect", status=503)),
    FaultShare(0.04, Fault("error_after_effect", status=504)),
    FaultShare(0.06, Fault("reset_after_effect")),
    FaultShare(0.06, Fault("timeout_after_effect", delay_s=2.0)),
    FaultShare(0.04, Fault("error_before_effect", times=2)),
    FaultShare(0.03, Fault("reset_before_effect")),
    FaultShare(0.03, Fault("rate_limit", retry_after_s=1)),
    # More after-effect errors than attempts: in doubt, until a reconciler looks it up.
    FaultShare(0.03, Fault("error_after_effect", times=4, status=500), successes_only=True),
)

SINGLE_NODE_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="worker-kills",
        summary="3 card workers and 1 payout worker, replaced when they die",
        layout={"card": 3, "digital_currency": 1},
        provider_latency_ms=300,
        disturbances=(KillWorkers(every_s=1.5),),
    ),
    *(_crash(point) for point in CRASH_POINTS),
    Scenario(
        name="broker-restarts",
        summary="the broker node is stopped and started again, twice",
        disturbances=(RestartBroker(at=(0.3, 0.6)),),
    ),
    Scenario(
        name="connection-closes",
        summary="the broker force-closes every connection, repeatedly",
        disturbances=(CloseConnections(every_s=2.0),),
    ),
    Scenario(
        name="duplicate-deliveries",
        summary="every payment published twice in a row, consumed by two workers per channel",
        layout={"card": 2, "digital_currency": 2},
        provider_latency_ms=100,
        copies=2,
    ),
    Scenario(
        name="provider-faults",
        summary="5xx, resets and timeouts after the effect, errors and 429 before it "
        "(read timeout 1 s); payouts that settle later",
        settings={"provider_read_timeout_s": 1.0},
        faults=_PROVIDER_FAULTS,
        settles_later=0.03,
    ),
    Scenario(
        name="long-provider-call",
        summary="a tenth of provider calls take 7 s, with a 2 s AMQP heartbeat "
        "(32 payments in flight per worker)",
        settings={"heartbeat_s": 2, "provider_read_timeout_s": 15.0, "worker_concurrency": 32},
        worker_env={"PAYMQ_CLAIM_LEASE_S": "30"},
        faults=(FaultShare(0.10, Fault("timeout_after_effect", delay_s=7.0)),),
    ),
    Scenario(
        name="memory-alarm",
        summary="the broker's memory alarm blocks every publisher for 4 s; the producer's "
        "confirm timeout is 1.5 s, so it republishes (same message id) while blocked",
        settings={"publish_timeout_s": 1.5},
        disturbances=(MemoryAlarm(at=0.4, hold_s=4.0),),
    ),
    Scenario(
        name="disk-alarm",
        summary="the broker's disk alarm blocks every publisher for 4 s; the producer's "
        "confirm timeout is 1.5 s, so it republishes (same message id) while blocked",
        settings={"publish_timeout_s": 1.5},
        disturbances=(DiskAlarm(at=0.4, hold_s=4.0),),
    ),
    Scenario(
        name="poison-payments",
        summary="1% of payments kill every worker that takes them, after the provider call; "
        "the second takeover of such a payment puts it in doubt instead of executing it "
        "(one payment in flight per worker, so a crash names its payment)",
        layout={"card": 3, "digital_currency": 1},
        settings={"worker_concurrency": 1},
        provider_latency_ms=20,
        poison=0.01,
        worker_env={
            "PAYMQ_CRASH_AT": "after_provider_call",
            "PAYMQ_CRASH_EVERY": "1",
            "PAYMQ_CRASH_REFERENCE_PREFIX": POISON_PREFIX,
            "PAYMQ_POISON_AFTER_TAKEOVERS": "2",
        },
    ),
    Scenario(
        name="failover",
        summary="cards routed sandbox > Stripe (localstripe): the sandbox answers 429 to 45% "
        "of the payments (sealed cards fail over, tokens wait), charges and then answers 500 "
        "or lets the call time out for 15% (they must stay); workers killed and replaced",
        layout={"card": 3, "digital_currency": 1},
        settings={"provider_read_timeout_s": 1.0, "breaker_failures": 1000},
        provider_latency_ms=100,
        stripe=True,
        faults=(
            FaultShare(0.45, Fault("rate_limit", retry_after_s=1), successes_only=True),
            FaultShare(0.10, Fault("error_after_effect"), successes_only=True),
            FaultShare(0.05, Fault("timeout_after_effect", delay_s=2.0), successes_only=True),
        ),
        disturbances=(KillWorkers(every_s=2.0),),
    ),
    Scenario(
        name="chain",
        summary="payouts on a real chain (anvil, a block a second, 2 confirmations): 3 payout "
        "workers sharing one hot wallet, each exiting (137) between storing a signed "
        "transaction and broadcasting it, about every "
        f"{CRASH_LIFETIME_S:g} s; workers also killed and replaced",
        layout={"card": 1, "digital_currency": 3},
        provider_latency_ms=20,
        chain=True,
        crash_at="after_transaction_stored",
        disturbances=(KillWorkers(every_s=2.0),),
    ),
    Scenario(
        name="link-flap",
        summary="the workers reach the broker through a link that resets every connection "
        f"after {FLAP_AFTER_BYTES} bytes, mid-frame, for 15 s, twice (the producer, the "
        "reconciler and the subscriber connect directly)",
        links=("broker",),
        disturbances=(FlapLink("broker", after_bytes=FLAP_AFTER_BYTES, hold_s=15.0, times=2),),
    ),
    Scenario(
        name="link-partition",
        summary="the workers' link to the broker is blackholed for 8 s, 4 times the AMQP "
        "heartbeat (2 s here): nothing arrives, nothing closes; then it heals",
        links=("broker",),
        settings={"heartbeat_s": 2},
        disturbances=(PartitionLink("broker", hold_s=8.0, at=0.3),),
    ),
    Scenario(
        name="store-stall",
        summary="the store on a private PostgreSQL; the workers' link to it is blackholed for "
        "30 s, longer than the broker's consumer timeout (20 s here, checked every second)",
        private_postgres=True,
        links=("store",),
        node_settings={"consumer_timeout": 20_000, "channel_tick_interval": 1_000},
        disturbances=(PartitionLink("store", hold_s=30.0, at=0.3),),
    ),
    Scenario(
        name="store-outage",
        summary="the store on a private PostgreSQL, stopped (pg_ctl stop -m immediate) for "
        "20 s and started again",
        private_postgres=True,
        disturbances=(StopDatabase(hold_s=20.0, at=0.3),),
    ),
    Scenario(
        name="sqlite-lock",
        summary="another process holds the SQLite store's write lock (BEGIN IMMEDIATE) for 45 s",
        disturbances=(LockSqlite(hold_s=45.0, at=0.3),),
    ),
    Scenario(
        name="stale-claim",
        summary="one card and one payout worker; now and then a worker thread holds still for "
        "8 s after its provider call (2 s each); the broker's consumer timeout (8.4 s here) "
        "gives the delivery back to the same process, which takes the claim over while the "
        "stalled thread wakes up and records its outcome",
        layout={"card": 1, "digital_currency": 1},
        settings={"worker_concurrency": 48, "provider_read_timeout_s": 10.0},
        provider_latency_ms=2000,
        stall=StallPlan("after_provider_call", seconds=8.0, every_s=1.5),
        node_settings={"consumer_timeout": 8_400, "channel_tick_interval": 250},
    ),
    Scenario(
        name="storm",
        summary="all at once: 3 card workers and 1 payout worker, provider faults after the effect",
        layout={"card": 3, "digital_currency": 1},
        settings={"provider_read_timeout_s": 1.0},
        provider_latency_ms=200,
        faults=_PROVIDER_FAULTS,
        settles_later=0.03,
        disturbances=(
            KillWorkers(every_s=2.0),
            RestartBroker(at=(0.3, 0.6)),
            CloseConnections(every_s=5.0),
        ),
    ),
)


#: On a private three-node cluster, the store on PostgreSQL (docs/faults.md, "A cluster").
CLUSTER_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="node-kill",
        summary="a cluster of three; 3 card workers and 1 payout worker spread over its nodes",
        layout={"card": 3, "digital_currency": 1},
        cluster=True,
        postgres=True,
        min_window_s=45.0,
        disturbances=(KillNode(at=0.2, down_s=30.0),),
    ),
    Scenario(
        name="rolling-restart",
        summary="a cluster of three; each node stopped and started again in turn, the next "
        "one once every queue is back on all three",
        layout={"card": 3, "digital_currency": 1},
        cluster=True,
        postgres=True,
        min_window_s=60.0,
        disturbances=(RollingRestart(start_at=0.1, gap_s=3.0),),
    ),
    Scenario(
        name="minority-partition",
        summary="a cluster of three (pause_minority); one node cut off from the other two at "
        "the Erlang distribution level, then healed",
        layout={"card": 3, "digital_currency": 1},
        cluster=True,
        postgres=True,
        min_window_s=40.0,
        disturbances=(PartitionNode(at=0.25, hold_s=15.0),),
    ),
    Scenario(
        name="leader-moves",
        summary="a cluster of three; quorum queue leaders moved to another node again and again",
        layout={"card": 3, "digital_currency": 1},
        cluster=True,
        postgres=True,
        min_window_s=30.0,
        disturbances=(MoveLeaders(every_s=3.0),),
    ),
)

#: Every scenario in suite order: the single node's, then the cluster's.
SCENARIOS = SINGLE_NODE_SCENARIOS + CLUSTER_SCENARIOS


def by_name(names: list[str] | None) -> list[Scenario]:
    """The named scenarios in suite order; all of them for None or an empty list."""
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown scenarios {unknown}; known: {', '.join(known)}")
    return [s for s in SCENARIOS if s.name in names]

"""What a scenario says: the workers and settings of a run, what the provider does wrong, and
what happens to the processes and the broker while payments flow. scenarios.py lists the
scenarios; runner.py runs them.

Whatever the scenario, the checker demands the same: nothing lost, no duplicated effect, no
conflicting results, nothing stuck (docs/faults.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from paymq_tools.chaos.disturbances import Disturbance
from paymq_tools.chaos.faults import FaultShare

#: A worker at a crash point lives about this long, whatever the publishing pace: it crashes on
#: every n-th payment reaching the point, n = its share of the pace times this.
CRASH_LIFETIME_S = 4.0
MIN_CRASH_EVERY = 10


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
    #: Settings fields for every process of the run (Settings.replace on the base settings).
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

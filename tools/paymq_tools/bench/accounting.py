"""What the bench's processes used: CPU seconds from /proc (the workers, the sandbox, the local
broker node, this process), and each stand-in host's share of the payments and of the workers'
CPU, from the workers' Prometheus endpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from paymq_tools.processes import Fleet, Host


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_broker_pid() -> int | None:
    """The RabbitMQ node's process on this machine, if there is one (for CPU accounting)."""
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == "beam.smp":
                return int(stat.parent.name)
        except OSError:
            continue
    return None


@dataclass(frozen=True)
class HostedWorker:
    name: str
    host: Host
    metrics_url: str


@dataclass(frozen=True)
class HostShare:
    host: str
    directory: str
    workers: int
    payments: int
    worker_cpu_ms_per_payment: float


def metric_sum(metrics_url: str, name: str) -> float:
    """The sum of a metric's samples (all labels) on a worker's Prometheus endpoint."""
    text = requests.get(metrics_url, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


#: Where a payment's time goes in a worker, from the workers' histograms (common/metrics.py):
#: each hop's metric and the labels that pick it.
HOPS: dict[str, tuple[str, dict[str, str]]] = {
    "claim": ("paymq_store_write_seconds", {"write": "claim"}),
    "provider": ("paymq_provider_call_seconds", {"operation": "execute"}),
    "outcome": ("paymq_store_write_seconds", {"write": "outcome"}),
    "result_publish": ("paymq_result_publish_seconds", {}),
}


def hop_figures(workers: list[HostedWorker]) -> dict[str, dict[str, float]]:
    """Each hop's mean (exact) and p50/p99 (interpolated within the histogram's buckets, as
    Prometheus's histogram_quantile does), in ms, over every worker."""
    samples = [
        sample
        for worker in workers
        for family in text_string_to_metric_families(
            requests.get(worker.metrics_url, timeout=10).text
        )
        for sample in family.samples
    ]
    figures = {}
    for hop, (metric, labels) in HOPS.items():
        buckets: dict[float, float] = {}
        total_s = count = 0.0
        for sample in samples:
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name == f"{metric}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name == f"{metric}_sum":
                total_s += sample.value
            elif sample.name == f"{metric}_count":
                count += sample.value
        if count:
            figures[hop] = {
                "mean": round(total_s / count * 1000, 1),
                "p50": round(bucket_quantile(buckets, 0.50) * 1000, 1),
                "p99": round(bucket_quantile(buckets, 0.99) * 1000, 1),
            }
    return figures


def bucket_quantile(cumulative: dict[float, float], q: float) -> float:
    """The q-quantile of a histogram given as cumulative counts by upper bound (the last one
    +Inf): linear within the bucket it falls in, the last finite bound past it."""
    bounds = sorted(cumulative)
    rank = q * cumulative[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        if cumulative[bound] >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / max(cumulative[bound] - lower_count, 1e-9)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, cumulative[bound]
    return lower_bound


def _payments_recorded(metrics_url: str) -> int:
    """Payments a worker recorded a result for, whatever the status, from its metrics."""
    return round(metric_sum(metrics_url, "paymq_payments_total"))


def peak_rss_mib(pid: int) -> float | None:
    """The most memory a process has held (VmHWM, Linux), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


@dataclass(frozen=True)
class StoreFigures:
    """What the workers' store writers did over the run (their Prometheus counters)."""

    transactions: int
    writes: int

    @classmethod
    def read(cls, workers: list[HostedWorker]) -> StoreFigures:
        return cls(
            transactions=round(
                sum(metric_sum(w.metrics_url, "paymq_store_transactions_total") for w in workers)
            ),
            writes=round(
                sum(metric_sum(w.metrics_url, "paymq_store_writes_total") for w in workers)
            ),
        )


def host_shares(
    workers: list[HostedWorker], fleet: Fleet, worker_cpu_s: dict[int, float]
) -> list[HostShare]:
    """Each host's share of the work, read while its workers still run."""
    hosts: dict[str, list[HostedWorker]] = {}
    for worker in workers:
        hosts.setdefault(worker.host.name, []).append(worker)
    shares = []
    for name, members in hosts.items():
        payments = sum(_payments_recorded(w.metrics_url) for w in members)
        cpu_s = sum(worker_cpu_s[fleet.processes[w.name].pid] for w in members)
        shares.append(
            HostShare(
                host=name,
                directory=str(members[0].host.directory),
                workers=len(members),
                payments=payments,
                worker_cpu_ms_per_payment=round(cpu_s * 1000 / max(payments, 1), 3),
            )
        )
    return shares

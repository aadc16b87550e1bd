"""`paymq bench`: payments/s and publish-to-result latency through the real pipeline.

Real processes on the configured broker: the sandbox provider with the given latency, N worker
processes for the card channel, this process as producer and as a verifying result subscriber.
Latency is measured from the moment a payment is handed to the publisher to the moment its
verified result event is received; throughput is payments / (last result - first publish).

The workers are spread over H stand-in hosts (paymq_tools.processes.Host): each a process group with
its own working directory and its own copy of the worker's keys. Several hosts share what
machines would share, which rules out a SQLite store. Each worker's payments are read from its
Prometheus endpoint at the end, for the figures per host.

Publishing and collecting: traffic.py; CPU and per-host accounting: accounting.py;
the printed figures: report.py.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from common.amqp.admin import BrokerAdmin
from common.errors import ConfigurationError
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.money import Money
from common.settings import Settings
from common.subscriber import ResultVerifier
from paymq_tools.bench.accounting import (
    HostedWorker,
    HostShare,
    StoreFigures,
    cpu_s,
    hop_figures,
    host_shares,
    local_broker_pid,
    peak_rss_mib,
)
from paymq_tools.bench.report import Figures, report
from paymq_tools.bench.traffic import BenchFailed, Collector, publish_flat_out, publish_paced
from paymq_tools.bench.workdir import run_directory
from paymq_tools.broker import ensure_broker
from paymq_tools.processes import (
    Fleet,
    child_environment,
    free_port,
    settings_env,
    wait_for_consumers,
    wait_for_http,
    worker_host,
)
from producer.encode import Draft
from producer.producer import Producer

console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class BenchOptions:
    payments: int
    provider_latency_ms: int
    workers: int
    concurrency: int
    rate_per_s: int
    as_json: bool
    #: Verify every result as a subscriber would (signature, strict parsing, model).
    verify_results: bool = False
    #: The payment store; None for a fresh SQLite file in the bench's directory.
    database_url: str | None = None
    #: Stand-in hosts the workers are spread over (round robin).
    hosts: int = 1
    #: Keep the bench's directory (its keys, store and logs) after a run that succeeded.
    keep: bool = False

    def check(self) -> None:
        """Refuse what cannot be measured; a usage error, before anything starts."""
        if not 1 <= self.hosts <= self.workers:
            raise ConfigurationError(
                f"--hosts {self.hosts}: between 1 and the number of workers ({self.workers})"
            )
        sqlite = self.database_url is None or self.database_url.startswith("sqlite")
        if self.hosts > 1 and sqlite:
            raise ConfigurationError(
                "several hosts need a store they can share: --database-url "
                "postgresql+psycopg://... (a SQLite file serves the processes of one host only)"
            )


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    index = min(len(sorted_ms) - 1, max(0, round(q * len(sorted_ms)) - 1))
    return sorted_ms[index]


def run_bench(settings: Settings, options: BenchOptions) -> int:
    options.check()
    ensure_broker(settings.broker.amqp_url, say=console.print)
    with run_directory("paymq-bench-", keep=options.keep) as run:
        figures, shares = _run(settings, options, run.path)
        report(figures, shares, as_json=options.as_json)
        run.succeeded = figures["succeeded"] == options.payments
    return 0 if run.succeeded else 1


def _run(
    settings: Settings, options: BenchOptions, work_dir: Path
) -> tuple[Figures, list[HostShare]]:
    settings = settings.replace(
        topology_prefix=f"paymq-bench-{uuid.uuid4().hex[:6]}",
        keys_dir=work_dir / "keys",
        database_url=options.database_url or f"sqlite:///{work_dir / 'paymq.db'}",
        provider_url=f"http://127.0.0.1:{free_port()}",
        worker_concurrency=options.concurrency,
        worker_prefetch=options.concurrency,
        log_level="WARNING",
    )
    init_keys(
        settings.keys.keys_dir,
        producer_key_id=settings.keys.producer_key_id,
        worker_key_id=settings.keys.worker_key_id,
        sealing_key_id="card-seal-1",
    )
    topology = settings.broker.topology()
    with BrokerAdmin(settings.broker.amqp_url) as admin:
        admin.declare(topology)
    fleet = Fleet(work_dir, settings_env(settings, child_environment()))
    try:
        port = settings.sandbox.provider_url.rsplit(":", 1)[1]
        fleet.start(
            "sandbox", "sandbox", "--port", port, "--latency-ms", str(options.provider_latency_ms)
        )
        wait_for_http(f"{settings.sandbox.provider_url}/health", fleet)
        workers = _start_workers(settings, options, fleet, work_dir)
        wait_for_consumers(
            settings.broker.amqp_url, {topology.work_queue("card"): options.workers}, fleet
        )
        figures, worker_cpu_s = _measure(settings, options, fleet)
        shares = host_shares(workers, fleet, worker_cpu_s)
        figures |= _worker_figures(workers, fleet, figures)
    finally:
        fleet.stop()
        with BrokerAdmin(settings.broker.amqp_url) as admin:
            admin.delete(topology)
    return figures, shares


def _worker_figures(workers: list[HostedWorker], fleet: Fleet, figures: Figures) -> Figures:
    """Read while the workers still run: their peak memory, and their store writers' work
    per payment (transactions are the figure the batched store is judged by)."""
    payments = max(1, int(str(figures["results"])))
    store = StoreFigures.read(workers)
    peaks = [peak_rss_mib(fleet.processes[w.name].pid) for w in workers]
    known = [peak for peak in peaks if peak is not None]
    return {
        "worker_peak_rss_mib": max(known) if known else None,
        "store_transactions_per_payment": round(store.transactions / payments, 3),
        "store_writes_per_transaction": round(store.writes / max(1, store.transactions), 1),
        # Where a payment's time went in the workers: ms, from their histograms.
        **{f"{hop}_ms": figures for hop, figures in hop_figures(workers).items()},
    }


def _start_workers(
    settings: Settings, options: BenchOptions, fleet: Fleet, work_dir: Path
) -> list[HostedWorker]:
    """The workers, round robin over the hosts; each reads its keys from its host's copy and
    serves its metrics on a port of its own."""
    hosts = [
        worker_host(
            f"host-{index + 1}",
            work_dir / f"host-{index + 1}",
            settings.keys.keys_dir,
            settings.keys.worker_key_id,
        )
        for index in range(options.hosts)
    ]
    workers = []
    for index in range(options.workers):
        host, port = hosts[index % len(hosts)], free_port()
        name = f"worker-{index}"
        environment = {"PAYMQ_KEYS_DIR": "keys", "PAYMQ_METRICS_PORT": str(port)}
        fleet.start(name, "worker", "card", env=environment, host=host)
        workers.append(HostedWorker(name, host, f"http://127.0.0.1:{port}/metrics"))
    return workers


def _measure(
    settings: Settings, options: BenchOptions, fleet: Fleet
) -> tuple[Figures, dict[int, float]]:
    """The run's figures, and the CPU seconds each worker (by pid) spent during it."""
    keyring = Keyring.load(settings.keys.keys_dir / TRUSTED_DIR)
    verifier = ResultVerifier(keyring) if options.verify_results else None
    collector = Collector(settings, verifier, options.payments)
    collector.start()
    collector.ready.wait(30)
    if collector.error is not None:
        raise BenchFailed(f"result collector failed: {collector.error}")
    published_at: dict[str, float] = {}
    worker_pids = [p.pid for n, p in fleet.processes.items() if n.startswith("worker")]
    sandbox_pid = fleet.processes["sandbox"].pid
    with Producer.from_settings(settings, name="paymq-bench") as producer:
        console.print(f"signing {options.payments} payments...")
        messages = [
            producer.prepare(
                Draft(
                    amount=Money(amount_minor=1000 + i, currency="USD"),
                    merchant_reference=f"bench-{i}",
                    idempotency_key=f"bench-{uuid.uuid4().hex}",
                    card_token="tok_visa",
                )
            )[1]
            for i in range(options.payments)
        ]
        broker_pid = local_broker_pid()
        others = [pid for pid in (broker_pid, os.getpid()) if pid is not None]
        cpu_before = {pid: cpu_s(pid) for pid in [*worker_pids, sandbox_pid, *others]}
        console.print(
            f"publishing to {options.workers} workers x {options.concurrency} "
            f"in flight, provider latency {options.provider_latency_ms} ms..."
        )
        start = time.monotonic()
        if options.rate_per_s:
            publish_paced(producer, messages, options.rate_per_s, published_at)
        else:
            publish_flat_out(producer, messages, published_at)
        collector.join(timeout=120 + options.payments * options.provider_latency_ms / 1000)
        collector.done.set()
    cpu_after = {pid: cpu_s(pid) for pid in cpu_before}

    received = collector.received_at
    latencies = sorted(
        (received[m] - published_at[m]) * 1000 for m in received if m in published_at
    )
    elapsed_s = (max(received.values()) - start) if received else float("inf")
    worker_cpu_s = sum(cpu_after[p] - cpu_before[p] for p in worker_pids)
    count = len(latencies)

    def per_payment_ms(pid: int | None) -> float | None:
        if pid is None:
            return None
        return round((cpu_after[pid] - cpu_before[pid]) * 1000 / max(count, 1), 3)

    return {
        "payments": options.payments,
        "payments_per_s": round(count / elapsed_s, 1) if count else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "provider_latency_ms": options.provider_latency_ms,
        "store": "sqlite" if options.database_url is None else options.database_url.split(":")[0],
        "workers": options.workers,
        "hosts": options.hosts,
        "concurrency_per_worker": options.concurrency,
        "payments_per_s_per_worker": round(count / elapsed_s / options.workers, 1)
        if count
        else 0.0,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        "worker_cpu_ms_per_payment": round(worker_cpu_s * 1000 / max(count, 1), 3),
        "sandbox_cpu_ms_per_payment": per_payment_ms(sandbox_pid),
        "broker_cpu_ms_per_payment": per_payment_ms(broker_pid),
        # This process: publishing, and receiving and verifying every result.
        "bench_cpu_ms_per_payment": per_payment_ms(os.getpid()),
        "results_verified": options.verify_results,
        "results": count,
        "succeeded": sum(1 for s in collector.statuses.values() if s == "succeeded"),
        "elapsed_s": round(elapsed_s, 2),
    }, {pid: cpu_after[pid] - cpu_before[pid] for pid in worker_pids}

"""One scenario, end to end, on the suite's private broker (one node, or a cluster of three).

    topology, keys, store, link proxies, node settings
    -> sandbox, workers (kept at strength), reconciler, result collector
    -> sandbox faults registered -> payments published at a steady pace while disturbances run
    -> wait until every confirmed payment has its result and the work and retry queues are empty
    -> stop the workers; take what is left in the queues, the dead letters and the ledger
    -> the checker's report, with the figures of the run

Everything started here is stopped here, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console

from common.amqp.admin import BrokerAdmin
from common.errors import PaymqError
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.models import PaymentStatus
from common.settings import Settings
from common.subscriber import ResultEvent, ResultStream, ResultVerifier
from paymq_tools.chaos.broker import Broker
from paymq_tools.chaos.chain import ChainStage
from paymq_tools.chaos.checker import Observations, Published, ReceivedEvent, check
from paymq_tools.chaos.cluster import PrivateCluster
from paymq_tools.chaos.crew import Crew, kill_group
from paymq_tools.chaos.disturbances import Disturber, Stage
from paymq_tools.chaos.evidence import Evidence, gather
from paymq_tools.chaos.outcome import Figures, ScenarioOutcome
from paymq_tools.chaos.progress import RunProgress
from paymq_tools.chaos.publishing import Prepared, prepare, publish_paced
from paymq_tools.chaos.queues import dead_letters, leftovers, work_and_retry_queues
from paymq_tools.chaos.recovery import longest_gap_s
from paymq_tools.chaos.scenarios import Scenario
from paymq_tools.chaos.services import Services
from paymq_tools.chaos.wiring import Wiring
from paymq_tools.chaos.workload import PlannedPayment, plan_payments
from paymq_tools.collect import ResultCollector
from paymq_tools.processes import (
    Fleet,
    child_environment,
    free_port,
    settings_env,
    wait_for_consumers,
)
from producer.producer import Producer

#: Short retry tiers and reconnection back-off: a run takes seconds, not the production
#: schedule's minutes.
RETRY_DELAYS_MS = (200, 500, 1000)
MAX_ATTEMPTS = 4
#: The publishing pace is capped, and a small run is stretched over a minimum window, so that
#: the disturbances always meet payments in flight.
MAX_RATE_PER_S = 100.0
MIN_WINDOW_S = 12.0
#: Room for one reconciler check held by a killed worker (the store holds a check for 60 s).
SETTLE_TIMEOUT_S = 150.0
QUIET_S = 1.0
QUEUE_CHECK_INTERVAL_S = 2.0


class ScenarioMisfit(PaymqError):
    """A cluster scenario given a single node, or the other way round."""

    code = "scenario_misfit"


@dataclass(frozen=True)
class RunOptions:
    payments: int
    keep: bool = False
    seed: int | None = None
    #: A PostgreSQL server (admin URL) to hold each scenario's store in a throwaway database;
    #: None for a SQLite file in the run's directory.
    postgres_admin_url: str | None = None


def run_scenario(
    scenario: Scenario, broker: Broker, options: RunOptions, console: Console
) -> ScenarioOutcome:
    """Run `scenario` on `broker`: a private node, or a private cluster for a cluster
    scenario (ScenarioMisfit otherwise)."""
    if scenario.cluster != isinstance(broker, PrivateCluster):
        needs = "a private cluster" if scenario.cluster else "a single private node"
        raise ScenarioMisfit(f"{scenario.name} runs on {needs}")
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.describe()}")
    run = _Run(scenario, broker, options, console)
    try:
        with _log_to(run.work_dir / "runner.log"):
            return run.execute()
    finally:
        run.clean_up()


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """This process's own log lines (producer, collector) go to the run's directory, not
    through the progress display."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("paymq")
    level = ours.level
    root.addHandler(handler)
    ours.setLevel(logging.INFO)
    try:
        yield
    finally:
        ours.setLevel(level)
        root.removeHandler(handler)
        handler.close()


#: localstripe takes any key of this shape.
STRIPE_KEY = "sk_test_paymq_chaos"


def _settings(
    scenario: Scenario, broker: Broker, work_dir: Path, chain: ChainStage | None
) -> Settings:
    base = Settings(
        amqp_url=broker.url,
        topology_prefix=f"chaos-{uuid.uuid4().hex[:8]}",
        keys_dir=work_dir / "keys",
        provider_url=f"http://127.0.0.1:{free_port()}",
        retry_delays_ms=RETRY_DELAYS_MS,
        max_attempts=MAX_ATTEMPTS,
        reconnect_max_delay_s=2.0,
        publish_timeout_s=10.0,
        # Upstream keeps republishing (same bytes and id) until the broker confirms; five
        # tries could all fall within one broker restart and the slow confirms after it.
        publish_attempts=60,
        worker_concurrency=8,
        shutdown_grace_s=5.0,
        provider_read_timeout_s=2.0,
        log_level="INFO",
    )
    if scenario.stripe:
        base = base.replace(
            card_providers=("sandbox", "stripe"),
            stripe_api_base=f"http://127.0.0.1:{free_port()}",
            stripe_api_key=SecretStr(STRIPE_KEY),
        )
    if chain is not None:
        base = base.replace(**chain.settings())
    return base.replace(**scenario.settings)


def _resolved(statuses: set[PaymentStatus] | None, reconciler: bool) -> bool:
    """Terminal; or, with no reconciler to resolve it, pending or in doubt."""
    if not statuses:
        return False
    return any(s.terminal for s in statuses) or not reconciler


class _Run:
    def __init__(
        self, scenario: Scenario, broker: Broker, options: RunOptions, console: Console
    ) -> None:
        self.scenario = scenario
        self.broker = broker
        self.options = options
        self.console = console
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"paymq-chaos-{scenario.name}-"))
        self.rng = random.Random(options.seed)  # noqa: S311 - test data, not cryptography
        self.chain = ChainStage(self.work_dir) if scenario.chain else None
        self.settings = _settings(scenario, broker, self.work_dir, self.chain)
        self.republished = 0
        self.topology = self.settings.broker.topology()
        env = settings_env(self.settings, child_environment())
        try:
            self.wiring = Wiring(
                self.work_dir,
                broker_url=broker.url,
                broker_port=broker.port,
                links=scenario.links,
                # A scenario that needs PostgreSQL takes the server of --postgres-url, or
                # starts its own when there is none.
                private_postgres=scenario.private_postgres
                or (scenario.postgres and options.postgres_admin_url is None),
                postgres_admin_url=options.postgres_admin_url,
                keep=options.keep,
                say=console.print,
            )
        except BaseException:  # e.g. no PostgreSQL: the run never starts, nothing is left
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise
        env.update(self.wiring.env())
        self.services = Services(Fleet(self.work_dir, env), self.settings)
        messages = options.payments * scenario.copies
        window_s = max(scenario.min_window_s or MIN_WINDOW_S, messages / MAX_RATE_PER_S)
        worker_env = scenario.worker_environment(rate_per_s=messages / window_s)
        self.workers = Fleet(self.work_dir, {**env, **worker_env, **self.wiring.worker_env()})
        self.crew = Crew(self.workers, scenario.layout, self.rng)
        self.stage = Stage(
            broker,
            self.crew,
            window_s=window_s,
            cluster=broker if isinstance(broker, PrivateCluster) else None,
            topology_prefix=self.topology.prefix,
            links=self.wiring.links,
            postgres=self.wiring.postgres,
            sqlite_file=self.wiring.sqlite_file,
            helpers=self.services.fleet,
        )
        #: The node's settings for this scenario, given back when it ends.
        self.node_settings = contextlib.ExitStack()
        self.evidence = Evidence(stalls=0, consumer_timeouts=0, claim_takeovers=0)
        keyring_dir = self.settings.keys.keys_dir / TRUSTED_DIR
        self.collector = ResultCollector(
            lambda: ResultStream(
                self.settings.broker.amqp_url,
                self.topology,
                ResultVerifier(Keyring.load(keyring_dir)),
                durable=True,
            ),
            name="chaos-collector",
        )

    def execute(self) -> ScenarioOutcome:
        began = time.monotonic()
        self._set_up()
        planned = plan_payments(
            self.options.payments,
            self.rng,
            self.scenario.faults,
            settles_later=self.scenario.settles_later,
            poison=self.scenario.poison,
            chain=self.scenario.chain,
        )
        self.services.inject_faults(planned)
        with RunProgress(self.console, self._tally) as progress:
            prepared, confirmed = self._publish(planned, progress)
            expected = {p.payment.payment_id for p in prepared if p.message.message_id in confirmed}
            settled = self._settle(expected, progress)
        observations = self._take_stock(prepared, confirmed)
        figures = self._figures(len(prepared), settled, time.monotonic() - began)
        if self.chain is not None:
            signed, problems = self.chain.audit(self.services.database_url)
            figures = replace(figures, chain_transactions=signed, chain_problems=problems)
        return ScenarioOutcome(
            self.scenario.name,
            check(observations),
            figures,
            self.work_dir if self.options.keep else None,
        )

    def _set_up(self) -> None:
        began = time.monotonic()
        init_keys(
            self.settings.keys.keys_dir,
            producer_key_id=self.settings.keys.producer_key_id,
            worker_key_id=self.settings.keys.worker_key_id,
            sealing_key_id="card-seal-1",
        )
        with BrokerAdmin(self.settings.broker.amqp_url) as admin:
            admin.declare(self.topology)
        if isinstance(self.broker, PrivateCluster):  # every queue on every node, or no run
            self.broker.await_replicated(self.topology.prefix, timeout_s=30)
        self.services.start_sandbox(self.scenario.provider_latency_ms)
        if self.scenario.stripe:
            self.services.start_localstripe()
        if self.chain is not None:
            self.chain.start()
        self.wiring.start()
        self.services.prepare_store()
        if self.scenario.node_settings:  # before the workers open their channels
            self.node_settings.enter_context(self.broker.app_settings(self.scenario.node_settings))
        self.crew.start()
        layout = self.scenario.layout
        queues = {self.topology.work_queue(channel): n for channel, n in layout.items()}
        wait_for_consumers(self.settings.broker.amqp_url, queues, self.workers)
        self.crew.supervise()
        self.services.start_reconciler()
        self.collector.start()
        self.collector.connected.wait(timeout=30)
        extras = [
            name
            for name, present in (
                ("payment store", self.services.store_ready),
                ("reconciler", self.services.reconciler_ran),
                ("anvil", self.chain is not None),
            )
            if present
        ]
        self.console.print(
            f"  sandbox, {self.crew.size} workers{''.join(', ' + e for e in extras)} "
            f"up in {time.monotonic() - began:.1f} s; topology {self.topology.prefix}"
        )

    def _publish(
        self, planned: list[PlannedPayment], progress: RunProgress
    ) -> tuple[list[Prepared], set[str]]:
        copies = self.scenario.copies
        with Producer.from_settings(self.settings, name="paymq-chaos-producer") as producer:
            prepared = prepare(producer, planned)
            total = len(prepared) * copies
            disturber = Disturber(self.stage, self.scenario.disturbances)
            disturber.start()
            try:
                tally = publish_paced(
                    producer,
                    prepared,
                    copies=copies,
                    window_s=self.stage.window_s,
                    on_progress=lambda done: progress.published(done, total),
                )
            except BaseException:  # Ctrl-C or a failure: faults heal now, not at their end
                self.stage.aborted.set()
                raise
            finally:
                disturber.stop()
        self.republished = tally.republished
        return prepared, tally.confirmed

    def _settle(self, expected: set[str], progress: RunProgress) -> bool:
        """Until every confirmed payment is resolved, results stopped coming and the work and
        retry queues are empty (ready and unacked), or the deadline."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        next_queue_check = 0.0
        reconciler = self.services.reconciler_ran
        while time.monotonic() < deadline:
            statuses = self.collector.statuses()
            done = sum(1 for p in expected if _resolved(statuses.get(p), reconciler))
            progress.settled(done, len(expected))
            now = time.monotonic()
            quiet = self.collector.quiet_for_s() >= QUIET_S
            if done == len(expected) and quiet and now >= next_queue_check:
                next_queue_check = now + QUEUE_CHECK_INTERVAL_S
                if self._queues_empty():
                    return True
            time.sleep(0.25)
        return False

    def _queues_empty(self) -> bool:
        watched = set(work_and_retry_queues(self.topology))
        depths = self.broker.queue_depths(self.topology.prefix)
        return all(d.total == 0 for d in depths if d.name in watched)

    def _take_stock(self, prepared: list[Prepared], confirmed: set[str]) -> Observations:
        self.crew.stop_supervising()
        self.workers.stop(timeout_s=15)
        self.services.stop_reconciler()
        with BrokerAdmin(self.settings.broker.amqp_url, name="paymq-chaos-inspect") as admin:
            left = leftovers(admin, self.topology)
            letters = dead_letters(admin, self.topology)
        # Workers that were draining may have settled their last payments: let those arrive.
        deadline = time.monotonic() + 10.0
        while self.collector.quiet_for_s() < 2 * QUIET_S and time.monotonic() < deadline:
            time.sleep(0.1)
        self.collector.stop()
        self.evidence = gather(self.work_dir, self.services.database_url)
        return Observations(
            published=[
                Published(
                    p.payment.payment_id,
                    p.message.message_id,
                    p.payment.expect,
                    p.message.message_id in confirmed,
                )
                for p in prepared
            ],
            events=[_received(a.event) for a in self.collector.arrivals()],
            effects=self.services.effects(stripe=self.scenario.stripe)
            + (self.chain.effects(p.payment.draft for p in prepared) if self.chain else []),
            dead_letters=letters,
            leftovers=left,
            reconciler_ran=self.services.reconciler_ran,
        )

    def _figures(self, payments: int, settled: bool, seconds: float) -> Figures:
        tally, done, evidence = self.crew.tally, self.stage.done, self.evidence
        links = self.wiring.link_stats().values()
        return Figures(
            payments=payments,
            messages_published=payments * self.scenario.copies,
            republished=self.republished,
            seconds=round(seconds, 1),
            worker_kills=tally.kills,
            worker_crashes=tally.crashes,
            worker_replacements=tally.started - self.crew.size,
            worker_exits=dict(tally.other_exits),
            worker_last_words=tuple(tally.last_words),
            broker_restarts=done["broker restarts"],
            connection_closes=done["connection closes"],
            memory_alarms=done["memory alarms"],
            disk_alarms=done["disk alarms"],
            store=self.services.store_ready,
            database=self.wiring.database_kind,
            reconciler=self.services.reconciler_ran,
            settled=settled,
            harness_errors=tuple(self.stage.errors),
            link_flaps=done["link flaps"],
            partitions=done["partitions"],
            link_resets=sum(link.resets for link in links),
            link_cuts_mid_chunk=sum(link.cut_mid_chunk for link in links),
            link_resets_passed_on=sum(link.passed_on for link in links),
            database_stops=done["database stops"],
            sqlite_locks=done["sqlite locks"],
            stalls=evidence.stalls,
            consumer_timeouts=evidence.consumer_timeouts,
            claim_takeovers=evidence.claim_takeovers,
            node_kills=done["node kills"],
            node_restarts=done["node restarts"],
            node_partitions=done["node partitions"],
            leader_transfers=done["leader transfers"],
            recovery_s=longest_gap_s((a.at_s for a in self.collector.arrivals()), self.stage.spans),
        )

    def _tally(self) -> str:
        tally, done = self.crew.tally, self.stage.done
        parts = {
            "kills": tally.kills,
            "crashes": tally.crashes,
            "broker restarts": done["broker restarts"],
            "closes": done["connection closes"],
            "alarms": done["memory alarms"] + done["disk alarms"],
            "link resets": sum(link.resets for link in self.wiring.link_stats().values()),
            "partitions": done["partitions"],
            "database stops": done["database stops"],
            "sqlite locks": done["sqlite locks"],
            "node kills": done["node kills"],
            "node restarts": done["node restarts"],
            "node partitions": done["node partitions"],
            "leader moves": done["leader transfers"],
        }
        return " · ".join(f"{name} {count}" for name, count in parts.items() if count)

    def clean_up(self) -> None:
        self.crew.stop_supervising()
        self.collector.stop()
        if self.chain is not None:
            self.chain.stop()
        for fleet in (self.workers, self.services.fleet):
            fleet.stop(timeout_s=10)
            for process in fleet.processes.values():
                kill_group(process)
        # Tidiness only (the node is the suite's own): whatever fails here, fails quietly.
        with (
            contextlib.suppress(Exception),
            BrokerAdmin(self.settings.broker.amqp_url, name="paymq-chaos-cleanup") as admin,
        ):
            admin.delete(self.topology)
        try:
            self.node_settings.close()
        except Exception as exc:  # the next scenarios would run with this one's settings
            self.console.print(f"[red]could not give the node its settings back:[/red] {exc}")
        self.wiring.close()
        if self.options.keep:
            self.console.print(f"kept logs and store in {self.work_dir}")
            return
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _received(event: ResultEvent) -> ReceivedEvent:
    """A copy of a result event as the checker takes it: its id, raw bytes and verified result."""
    return ReceivedEvent(event.message.message_id or "", event.message.body, event.result)

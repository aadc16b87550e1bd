"""One scenario, end to end, on the suite's private broker (one node, or a cluster of three).

    topology, keys, store, link proxies, node settings
    -> sandbox, workers (kept at strength), reconciler, result collector
    -> sandbox faults registered -> payments published at a steady pace while disturbances run
    -> wait until every confirmed payment has its result and the work and retry queues are empty
    -> stop the workers; take what is left in the queues, the dead letters and the ledger
    -> the checker's report, with the figures of the run

Everything started here is stopped here, on success, failure or Ctrl-C. The run's settings are
runsettings.py's; the wait and the stocktaking, stocktaking.py's; its figures, runfigures.py's.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from common.amqp.admin import BrokerAdmin
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.subscriber import ResultStream, ResultVerifier
from paymq_tools.chaos.broker import Broker
from paymq_tools.chaos.chain import ChainStage
from paymq_tools.chaos.checker import check
from paymq_tools.chaos.cluster import PrivateCluster
from paymq_tools.chaos.crew import Crew, kill_group
from paymq_tools.chaos.disturbances import Disturber, Stage
from paymq_tools.chaos.evidence import Evidence
from paymq_tools.chaos.outcome import ScenarioOutcome
from paymq_tools.chaos.progress import RunProgress
from paymq_tools.chaos.publishing import Prepared, prepare, publish_paced
from paymq_tools.chaos.runfigures import run_figures, tally
from paymq_tools.chaos.runsettings import run_settings
from paymq_tools.chaos.scenario import Scenario
from paymq_tools.chaos.services import Services
from paymq_tools.chaos.stocktaking import settle, take_stock
from paymq_tools.chaos.wiring import Wiring
from paymq_tools.chaos.workload import PlannedPayment, plan_payments
from paymq_tools.collect import ResultCollector
from paymq_tools.errors import ToolError
from paymq_tools.processes import (
    Fleet,
    child_environment,
    settings_env,
    wait_for_consumers,
)
from producer.producer import Producer

#: The publishing pace is capped, and a small run is stretched over a minimum window, so that
#: the disturbances always meet payments in flight.
MAX_RATE_PER_S = 100.0
MIN_WINDOW_S = 12.0


class ScenarioMisfit(ToolError):
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
    run = Run(scenario, broker, options, console)
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


class Run:
    """One scenario's run: the parts it starts, kept for stocktaking.py and runfigures.py."""

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
        self.settings = run_settings(scenario, broker, self.work_dir, self.chain)
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
        with RunProgress(self.console, lambda: tally(self)) as progress:
            prepared, confirmed = self._publish(planned, progress)
            expected = {p.payment.payment_id for p in prepared if p.message.message_id in confirmed}
            settled = settle(self, expected, progress)
        observations = take_stock(self, prepared, confirmed)
        figures = run_figures(self, len(prepared), settled, time.monotonic() - began)
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

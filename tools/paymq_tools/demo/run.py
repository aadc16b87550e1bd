"""`paymq demo`: the whole system, end to end, on the configured broker.

Starts the sandbox provider, Stripe's API (localstripe), a local Ethereum chain (anvil) and one
worker process per channel (unless --external), publishes a mixed batch (successes, declines,
retries, in-doubt outcomes, on-chain payouts, a forged, a tampered, an expired and a misrouted
message), waits for every signed result, checks each against what it should be and against the
providers' records (the sandbox's ledger, Stripe's PaymentIntents, the chain's balances) for
exactly one effect per successful payment, and prints a summary. Exit code 0 only when
everything matched.

The batch is batch.py's (its cases: cards.py, payouts.py, badmessages.py), the
chain chain.py's, the providers' records records.py's, the verdict report.py's and
the webhook receiver hooks.py's.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.amqp.admin import BrokerAdmin
from common.amqp.nodes import redact
from common.clock import SystemClock
from common.errors import PublishFailed
from common.keygen import init_keys
from common.keyring import TRUSTED_DIR, Keyring
from common.models import PaymentResult
from common.settings import Settings
from common.signing import Signer
from common.subscriber import ResultEvent, ResultStream, ResultVerifier
from paymq_tools.broker import ensure_broker
from paymq_tools.collect import take
from paymq_tools.demo.batch import build_cases
from paymq_tools.demo.cases import Case, CaseKit
from paymq_tools.demo.chain import install_refusing_contract, on_demo_chain
from paymq_tools.demo.hooks import DemoReceiver, print_metrics
from paymq_tools.demo.records import chain_transfers, stripe_intents
from paymq_tools.demo.report import Observed, report
from paymq_tools.processes import (
    Fleet,
    child_environment,
    free_port,
    settings_env,
    wait_for_consumers,
    wait_for_http,
)
from producer.encode import SealingKey
from producer.producer import Producer
from sandbox.client import SandboxControl

console = Console(highlight=False)

#: Short retry tiers so the demo's retried payments finish in seconds.
DEMO_RETRY_DELAYS_MS = (250, 500, 1000)
DEMO_MAX_ATTEMPTS = 4
#: The batch injects provider errors into a third of its card payments, so many at once that the
#: default breaker (5 in a row) would open and turn the retries it shows into circuit-open
#: failures. Opening the circuit is shown by the tests (tests/integration/test_routing.py).
DEMO_BREAKER_FAILURES = 25
#: localstripe takes any key of this shape; a real account's key never goes in code.
DEMO_STRIPE_KEY = "sk_test_paymq_demo"
#: The reconciler looks at pending and in-doubt payments after 1, 2 and 4 s (production: minutes).
DEMO_RECONCILE_SCHEDULE_S = (1.0, 2.0, 4.0)
#: A webhook refused once is sent again a quarter of a second later (production: 10 s first).
DEMO_WEBHOOK_RETRY_SCHEDULE_S = (0.25, 0.5, 1.0)
WEBHOOKS_TIMEOUT_S = 30.0


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def run_demo(settings: Settings, *, external: bool, keep: bool) -> int:
    ensure_broker(settings.broker.amqp_url, say=console.print)
    work_dir = Path(tempfile.mkdtemp(prefix="paymq-demo-"))
    fleet: Fleet | None = None
    chain = contextlib.ExitStack()
    if not external:
        settings = settings.replace(
            topology_prefix=f"paymq-demo-{uuid.uuid4().hex[:6]}",
            keys_dir=work_dir / "keys",
            retry_delays_ms=DEMO_RETRY_DELAYS_MS,
            max_attempts=DEMO_MAX_ATTEMPTS,
            database_url=f"sqlite:///{work_dir / 'paymq.db'}",
            reconcile_schedule_s=DEMO_RECONCILE_SCHEDULE_S,
            reconcile_interval_s=0.5,
            provider_url=f"http://127.0.0.1:{free_port()}",
            # Card payments: the sandbox first, then Stripe (localstripe, started below).
            card_providers=("sandbox", "stripe"),
            stripe_api_base=f"http://127.0.0.1:{free_port()}",
            stripe_api_key=SecretStr(DEMO_STRIPE_KEY),
            breaker_failures=DEMO_BREAKER_FAILURES,
            webhook_retry_schedule_s=DEMO_WEBHOOK_RETRY_SCHEDULE_S,
            webhook_poll_interval_s=0.1,
            webhook_allow_private_networks=True,  # the demo's receiver is on 127.0.0.1
        )
        init_keys(
            settings.keys.keys_dir,
            producer_key_id=settings.keys.producer_key_id,
            worker_key_id=settings.keys.worker_key_id,
            sealing_key_id="card-seal-1",
        )
        settings = on_demo_chain(settings, work_dir, chain)
    console.print(
        f"[bold]paymq demo[/bold]: broker {redact(settings.broker.amqp_url)}, "
        f"topology [cyan]{settings.broker.topology_prefix}[/cyan]"
    )
    receiver = None if external else chain.enter_context(DemoReceiver())
    try:
        with BrokerAdmin(settings.broker.amqp_url) as admin:
            admin.declare(settings.broker.topology())
        metrics_url = None
        if receiver is not None:
            receiver.register(settings.webhook_endpoints_path)
            fleet, metrics_url = _start_fleet(settings, work_dir)
        return _run_batch(settings, external=external, receiver=receiver, metrics_url=metrics_url)
    finally:
        if fleet is not None:
            codes = fleet.stop()
            console.print(f"stopped {', '.join(f'{n} ({c})' for n, c in codes.items())}")
        chain.close()
        if not external and not keep:
            with BrokerAdmin(settings.broker.amqp_url) as admin:
                admin.delete(settings.broker.topology())
                admin.delete_queue(settings.broker.topology().webhooks_queue)
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not external:
            console.print(f"kept topology {settings.broker.topology_prefix} and {work_dir}")


def _start_fleet(settings: Settings, work_dir: Path) -> tuple[Fleet, str]:
    """The providers, one worker per channel and the webhooks process; and where the card
    worker serves its metrics."""
    fleet = Fleet(work_dir, settings_env(settings, child_environment()))
    port = settings.sandbox.provider_url.rsplit(":", 1)[1]
    fleet.start("sandbox", "sandbox", "--port", port)
    wait_for_http(f"{settings.sandbox.provider_url}/health", fleet)
    console.print(f"[green]✓[/green] sandbox provider on {settings.sandbox.provider_url}")
    stripe_port = settings.stripe.stripe_api_base.rsplit(":", 1)[1]
    fleet.start("localstripe", "localstripe", "--port", stripe_port)
    # Its Stripe.js page needs no key: the emulator answers once it serves that.
    wait_for_http(f"{settings.stripe.stripe_api_base}/js.stripe.com/v3/", fleet)
    console.print(f"[green]✓[/green] Stripe API (localstripe) on {settings.stripe.stripe_api_base}")
    topology = settings.broker.topology()
    metrics_port = free_port()
    for channel in topology.channels:
        env = {"PAYMQ_METRICS_PORT": str(metrics_port)} if channel == "card" else None
        fleet.start(f"worker-{channel}", "worker", channel, env=env)
    fleet.start("webhooks", "webhooks", "run")
    consumers = {topology.work_queue(c): 1 for c in topology.channels}
    wait_for_consumers(settings.broker.amqp_url, {**consumers, topology.webhooks_queue: 1}, fleet)
    console.print(f"[green]✓[/green] workers consuming: {', '.join(topology.channels)}")
    console.print(f"[green]✓[/green] webhooks process delivering to {_endpoint_url(settings)}")
    return fleet, f"http://127.0.0.1:{metrics_port}/metrics"


def _endpoint_url(settings: Settings) -> str:
    from webhooks.endpoints import Endpoints  # noqa: PLC0415

    return ", ".join(e.url for e in Endpoints.load(settings.webhook_endpoints_path).endpoints)


def _run_batch(
    settings: Settings,
    *,
    external: bool,
    receiver: DemoReceiver | None = None,
    metrics_url: str | None = None,
) -> int:
    keyring = Keyring.load(settings.keys.keys_dir / TRUSTED_DIR)
    kid, public_key = keyring.sealing_key("card", settings.keys.sealing_key_id)
    kit = CaseKit(
        signer=Signer.load(settings.keys.keys_dir, settings.keys.producer_key_id),
        topology=settings.broker.topology(),
        sealing_key=SealingKey(kid, public_key),
        now_ms=SystemClock().now_ms(),
    )
    on_chain = "ethereum" in settings.providers.payout_providers
    cases = build_cases(
        kit,
        stripe="stripe" in settings.providers.card_providers,
        chain=on_chain,
        chain_tokens=tuple(settings.ethereum.ethereum_tokens),
    )
    if on_chain:
        install_refusing_contract(settings)
    control = SandboxControl(settings.sandbox.provider_url)
    for case in cases:
        if case.fault is not None and case.payment_id is not None:
            control.add_fault(
                case.fault.action,
                times=case.fault.times,
                reference=case.payment_id,
                retry_after_s=case.fault.retry_after_s,
            )
    verifier = ResultVerifier(keyring, max_body_bytes=settings.messages.max_body_bytes)
    # Listen before publishing, so no result can slip past.
    with ResultStream(settings.broker.amqp_url, settings.broker.topology(), verifier) as stream:
        _publish(settings, cases)
        results = _collect(stream, cases, _results_timeout_s(settings))
    effects = Counter(e["reference"] for e in control.effects())
    transfers = chain_transfers(settings, cases) if on_chain else None
    dead_letters = None
    if not external:  # the demo's own topology: its dead-letter queue holds only this batch
        with BrokerAdmin(settings.broker.amqp_url) as admin:
            dead_letters = admin.drain(settings.broker.topology().dead_letter_queue)
    intents = None if external else stripe_intents(settings)
    code = report(cases, Observed(results, effects, dead_letters, intents, transfers))
    if receiver is not None:
        event_ids = [str(result.event_id) for result in results.values()]
        if not receiver.await_events(event_ids, WEBHOOKS_TIMEOUT_S):
            code = code or 1
    if metrics_url is not None:
        print_metrics("worker-card", metrics_url)
    return code


def _publish(settings: Settings, cases: list[Case]) -> None:
    with (
        Producer.from_settings(settings, name="paymq-demo") as producer,
        _progress(f"publishing {len(cases)} payments") as progress,
    ):
        task = progress.add_task("publish", total=len(cases))
        outcomes = producer.publish_many(
            [c.message for c in cases],
            on_progress=lambda done, _t: progress.update(task, completed=done),
        )
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise PublishFailed(f"{len(failed)} messages were not confirmed: {failed[0].error}")


def _results_timeout_s(settings: Settings) -> float:
    delays = settings.broker.retry_delays_ms[: settings.worker.max_attempts - 1]
    return 30.0 + sum(delays) / 1000 * 2 + sum(settings.reconciler.reconcile_schedule_s[:2])


def _collect(stream: ResultStream, cases: list[Case], timeout_s: float) -> dict[str, PaymentResult]:
    wanted = {c.message.message_id for c in cases}
    # A payment that waits for its payer is done for the demo once it says so.
    waiting = {c.message.message_id for c in cases if c.expect_status == "pending"}
    results: dict[str, PaymentResult] = {}

    def final(event: ResultEvent) -> bool:
        result = event.result
        if result is None or result.request_message_id not in wanted - results.keys():
            return False
        if not (result.status.terminal or result.request_message_id in waiting):
            return False
        results[result.request_message_id] = result
        return True

    with _progress("waiting for results") as progress:
        task = progress.add_task("results", total=len(wanted))
        take(
            stream,
            keep=final,
            count=len(wanted),
            timeout_s=timeout_s,
            on_kept=lambda kept: progress.update(task, completed=kept),
        )
    return results

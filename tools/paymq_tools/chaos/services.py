"""The processes around the workers: the sandbox provider (and its effects ledger), the payment
store's schema, and a reconciler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from common.settings import Settings
from paymq_tools.chaos.workload import PlannedPayment
from paymq_tools.errors import ToolError
from paymq_tools.processes import Fleet, wait_for_http
from sandbox.client import SandboxControl
from workers.providers.stripe_outcomes import REFERENCE_KEY

#: PaymentIntent states in which Stripe has moved, or will move, the money.
_STRIPE_EFFECTS = frozenset({"succeeded", "processing", "requires_capture"})
#: The reconciler's first looks come within seconds, not the production schedule's minutes.
RECONCILE_SCHEDULE_S = (1.0, 2.0, 4.0, 8.0)
RECONCILE_INTERVAL_S = 0.5
#: A claim held by a killed worker blocks its payment no longer than this (above the provider
#: read timeout of the runs).
CLAIM_LEASE_S = 5.0
#: Timings of newer workers and reconcilers, short for runs of seconds; passed as environment
#: variables only, so workers that do not know them yet ignore them (unknown PAYMQ_ names are
#: ignored): a stored result unconfirmed this long is published again; a claim nobody touched
#: this long is put in doubt (above the longest claim lease of any scenario, 30 s, plus the
#: longest retry tier); one store call waits at most this long.
NEWER_WORKER_ENV = {
    "PAYMQ_REPUBLISH_AFTER_S": "5",
    "PAYMQ_ABANDONED_CLAIM_AFTER_S": "40",
    "PAYMQ_DATABASE_TIMEOUT_S": "5",
}


class StoreSetupFailed(ToolError):
    code = "store_setup_failed"


def store_env(work_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """One store per run, shared by every process of the run: a SQLite file in the run's
    directory unless a (PostgreSQL) database URL is given."""
    return {
        "PAYMQ_DATABASE_URL": database_url or f"sqlite:///{work_dir / 'paymq.db'}",
        "PAYMQ_CLAIM_LEASE_S": str(CLAIM_LEASE_S),
        "PAYMQ_RECONCILE_SCHEDULE_S": json.dumps(list(RECONCILE_SCHEDULE_S)),
        "PAYMQ_RECONCILE_INTERVAL_S": str(RECONCILE_INTERVAL_S),
        **NEWER_WORKER_ENV,
    }


class Services:
    def __init__(self, fleet: Fleet, settings: Settings) -> None:
        self.fleet = fleet
        self._settings = settings
        #: The store every process of the run shares.
        self.database_url = fleet.env["PAYMQ_DATABASE_URL"]
        self.store_ready = False
        self.reconciler_ran = False

    def start_sandbox(self, latency_ms: int) -> None:
        port = self._settings.sandbox.provider_url.rsplit(":", 1)[1]
        self.fleet.start("sandbox", "sandbox", "--port", port, "--latency-ms", str(latency_ms))
        wait_for_http(f"{self._settings.sandbox.provider_url}/health", self.fleet)

    def prepare_store(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "paymq", "db", "upgrade"],
            env=self.fleet.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise StoreSetupFailed(f"paymq db upgrade failed: {done.stderr.decode()[-800:]}")
        self.store_ready = True

    def start_reconciler(self) -> None:
        self.fleet.start("reconciler", "reconcile")
        self.reconciler_ran = True

    def inject_faults(self, planned: list[PlannedPayment]) -> None:
        """Each payment's fault rule, matched by the sandbox on its reference (the payment id)."""
        control = SandboxControl(self._settings.sandbox.provider_url)
        for payment in planned:
            fault = payment.fault
            if fault is not None:
                control.add_fault(
                    fault.action,
                    times=fault.times,
                    reference=payment.payment_id,
                    status=fault.status,
                    retry_after_s=fault.retry_after_s,
                    delay_s=fault.delay_s,
                )

    def start_localstripe(self) -> None:
        base = self._settings.stripe.stripe_api_base
        self.fleet.start("localstripe", "localstripe", "--port", base.rsplit(":", 1)[1])
        wait_for_http(f"{base}/js.stripe.com/v3/", self.fleet)

    def effects(self, *, stripe: bool = False) -> list[dict[str, Any]]:
        """Every provider effect, each naming its payment as `reference`: the sandbox's ledger,
        and with Stripe its PaymentIntents that moved money (or are about to)."""
        found = SandboxControl(self._settings.sandbox.provider_url, timeout_s=30).effects()
        if stripe:
            found += [
                {"reference": intent["metadata"].get(REFERENCE_KEY), "provider": "stripe"}
                for intent in self._payment_intents()
                if intent["status"] in _STRIPE_EFFECTS
            ]
        return found

    def _payment_intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent, read with Stripe's plain list API (not paymq's adapter)."""
        intents: list[dict[str, Any]] = []
        params = {"limit": "100"}
        with requests.Session() as http:
            http.auth = (self._settings.stripe.secret_key() or "", "")
            while True:
                page = http.get(
                    f"{self._settings.stripe.stripe_api_base}/v1/payment_intents",
                    params=params,
                    timeout=30,
                )
                page.raise_for_status()
                body = page.json()
                intents += body["data"]
                if not body["has_more"]:
                    return intents
                params["starting_after"] = body["data"][-1]["id"]

    def stop_reconciler(self) -> None:
        process = self.fleet.processes.get("reconciler")
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

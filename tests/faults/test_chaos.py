"""Every fault-injection scenario at CI size: real worker processes, the sandbox, a private
RabbitMQ node started for this session; the checker must find nothing lost, duplicated,
conflicting or stuck.

Needs `rabbitmq-server` installed (not running: the suite starts its own node on free ports),
and for the store faults PostgreSQL's server binaries (the suite starts its own server too).
Without them the scenarios skip, except when `CI` is set, where they fail. Size per scenario:
`PAYMQ_CHAOS_PAYMENTS` (default 200); `paymq chaos run` runs the full size. The cluster
scenarios are test_cluster.py's.
"""

from __future__ import annotations

import json
import os

import pytest
from rich.console import Console

from paymq_tools.chaos.databases import DatabaseSetupFailed, create_database, drop_database
from paymq_tools.chaos.node import PrivateBroker
from paymq_tools.chaos.outcome import row
from paymq_tools.chaos.postgres import postgres_installed
from paymq_tools.chaos.runner import RunOptions, run_scenario
from paymq_tools.chaos.scenario import Scenario
from paymq_tools.chaos.scenarios import SINGLE_NODE_SCENARIOS, by_name
from paymq_tools.devchain import anvil_path

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CI_PAYMENTS = int(os.environ.get("PAYMQ_CHAOS_PAYMENTS", "200"))
console = Console(stderr=True, highlight=False)


@pytest.mark.parametrize("scenario", SINGLE_NODE_SCENARIOS, ids=lambda s: s.name)
def test_every_payment_is_accounted_for(broker: PrivateBroker, scenario: Scenario) -> None:
    if scenario.chain and anvil_path() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and anvil is not installed (make install runs npm ci)")
        pytest.skip("anvil is not installed: make install (npm ci)")
    if scenario.private_postgres and not postgres_installed():
        if os.environ.get("CI"):
            pytest.fail("CI is set and PostgreSQL's server binaries (initdb, pg_ctl) are missing")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    # Given real workers, the sandbox and the scenario's faults on a private broker
    # When CI_PAYMENTS payments go through while the disturbances run
    outcome = run_scenario(scenario, broker, RunOptions(payments=CI_PAYMENTS), console)

    # Then the checker accounts for every one of them
    figures = row(outcome)
    console.print_json(data=figures)
    assert outcome.violations() == [], json.dumps(figures, indent=1)
    assert figures["confirmed"] == CI_PAYMENTS, json.dumps(figures, indent=1)
    if scenario.chain:  # the chain's own audit ran and found payouts to check
        assert figures["chain_transactions"] > 0
        assert figures["effects_by_provider"]["ethereum"] == figures["chain_transactions"]


def test_workers_sharing_a_postgresql_store_account_for_every_payment(
    broker: PrivateBroker,
) -> None:
    # Given the storm (kills, broker restarts, forced closes, provider faults) with the
    # payment store on PostgreSQL, as workers on several hosts would share it
    admin_url = os.environ.get("PAYMQ_TEST_POSTGRES_URL", POSTGRES_ADMIN_URL)
    _require_postgres(admin_url)
    options = RunOptions(payments=CI_PAYMENTS, postgres_admin_url=admin_url)
    # When CI_PAYMENTS payments go through
    outcome = run_scenario(by_name(["storm"])[0], broker, options, console)

    # Then the checker accounts for every one of them, as on SQLite
    figures = row(outcome)
    console.print_json(data=figures)
    assert figures["database"] == "postgresql"
    assert outcome.violations() == [], json.dumps(figures, indent=1)
    assert figures["confirmed"] == CI_PAYMENTS, json.dumps(figures, indent=1)


def _require_postgres(admin_url: str) -> None:
    try:
        drop_database(admin_url, create_database(admin_url, prefix="paymq_probe"))
    except DatabaseSetupFailed as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and PostgreSQL does not answer: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {exc}")

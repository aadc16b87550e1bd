"""The settings every process of a scenario's run is given: a topology and keys of the run's
own, short retry tiers and back-off (a run takes seconds, not the production schedule's
minutes), localstripe, the chain, and the scenario's own settings over all of them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import SecretStr

from common.settings import Settings
from paymq_tools.chaos.broker import Broker
from paymq_tools.chaos.chain import ChainStage
from paymq_tools.chaos.scenario import Scenario
from paymq_tools.processes import free_port

#: Short retry tiers and reconnection back-off: a run takes seconds, not the production
#: schedule's minutes.
RETRY_DELAYS_MS = (200, 500, 1000)
MAX_ATTEMPTS = 4


#: localstripe takes any key of this shape.
STRIPE_KEY = "sk_test_paymq_chaos"


def run_settings(
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
    return base.replace(**dict(scenario.settings))

"""Find the broker, or start one where we can, or say exactly how to get one."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from common.amqp.admin import BrokerAdmin
from common.amqp.nodes import node_urls, redact
from common.errors import BrokerUnavailable

START_TIMEOUT_S = 90.0
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def broker_answers(url: str, *, timeout_s: float = 3.0) -> bool:
    try:
        BrokerAdmin(url, name="paymq-probe", connect_timeout_s=timeout_s).close()
    except BrokerUnavailable:
        return False
    return True


def docker_engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        probe = subprocess.run(  # noqa: S603 - the docker client found on PATH
            [docker, "info"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def how_to_get_one(url: str) -> str:
    nodes = len(node_urls(url))
    where = f"at {redact(url)}" if nodes == 1 else f"at any of the {nodes} nodes {redact(url)}"
    return (
        f"No RabbitMQ answers {where}.\n"
        "Get one of these, then run the command again:\n"
        "  - Debian/Ubuntu: sudo apt-get install rabbitmq-server "
        "(then: sudo rabbitmq-server -detached)\n"
        "  - Docker: docker compose up -d rabbitmq   (from the paymq checkout)\n"
        "  - elsewhere: set PAYMQ_AMQP_URL (or AMQP_URL) to a broker you can reach, "
        "e.g. amqp://user:pass@host:5672/%2F"
    )


def ensure_broker(url: str, *, say: Callable[[str], None]) -> None:
    """Return once a broker answers at `url`; start a local one if possible; else raise
    BrokerUnavailable with instructions."""
    if broker_answers(url):
        return
    nodes = node_urls(url)
    # Only a single local node is one we may start; a cluster's nodes are the operator's.
    if len(nodes) > 1 or (urlparse(nodes[0]).hostname or "") not in _LOCAL_HOSTS:
        raise BrokerUnavailable(how_to_get_one(url))
    if docker_engine_answers() and COMPOSE_FILE.exists():
        say("No broker answers; starting RabbitMQ with docker compose...")
        command = ["docker", "compose", "-f", str(COMPOSE_FILE), "up", "-d", "rabbitmq"]
    elif shutil.which("rabbitmq-server"):
        say("No broker answers; starting the local rabbitmq-server...")
        command = ["rabbitmq-server", "-detached"]
    else:
        raise BrokerUnavailable(how_to_get_one(url))
    subprocess.run(command, capture_output=True, timeout=120, check=False)  # noqa: S603
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if broker_answers(url):
            say("RabbitMQ is up.")
            return
        time.sleep(1.0)
    raise BrokerUnavailable(
        f"started RabbitMQ with `{' '.join(command)}` but it did not answer within "
        f"{START_TIMEOUT_S:.0f} s.\n" + how_to_get_one(url)
    )

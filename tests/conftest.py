"""Shared fixtures: the broker every integration test talks to.

Where the broker comes from, in order:
1. `AMQP_URL`, `RABBITMQ_URL` or `PAYMQ_AMQP_URL` from the environment (CI exports AMQP_URL);
2. otherwise a RabbitMQ testcontainer, when a Docker engine answers;
3. otherwise the default local URL, starting the distribution's rabbitmq-server if it is
   installed and nothing answers (the same rule as `paymq demo`).
With none of these, integration tests skip locally, and fail when `CI` is set: a silent skip in
CI would be a lie.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.amqp.admin import BrokerAdmin
from common.errors import BrokerUnavailable
from common.settings import DEFAULT_AMQP_URL
from paymq_tools.broker import docker_engine_answers, ensure_broker
from tests.tracing import spans  # noqa: F401 - the `spans` fixture, for every test that records spans

_ENV_URLS = ("AMQP_URL", "RABBITMQ_URL", "PAYMQ_AMQP_URL")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and no RabbitMQ is available: {reason}", pytrace=False)
    pytest.skip(f"no RabbitMQ: {reason}")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    for name in _ENV_URLS:
        url = os.environ.get(name)
        if url:
            try:
                ensure_broker(url, say=print)
            except BrokerUnavailable as exc:
                _unavailable(f"{name} is set but: {exc}")
            yield url
            return
    if docker_engine_answers():
        # Only with a Docker engine; the module warns on import (see pyproject's filterwarnings).
        from testcontainers.rabbitmq import RabbitMqContainer  # noqa: PLC0415

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/%2F"
        return
    try:
        ensure_broker(DEFAULT_AMQP_URL, say=print)
    except BrokerUnavailable as exc:
        _unavailable(str(exc))
    yield DEFAULT_AMQP_URL


@pytest.fixture
def prefix(amqp_url: str) -> str:
    """A topology prefix of the test's own, so tests never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def admin(amqp_url: str) -> Iterator[BrokerAdmin]:
    with BrokerAdmin(amqp_url, name="paymq-test-admin") as broker_admin:
        yield broker_admin

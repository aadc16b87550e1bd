"""The private RabbitMQ node the fault tests break: one per session, started on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from rich.console import Console

from paymq_tools.chaos.node import PrivateBroker
from paymq_tools.chaos.nodectl import rabbitmq_installed


@pytest.fixture(scope="session")
def broker() -> Iterator[PrivateBroker]:
    if not rabbitmq_installed():
        if os.environ.get("CI"):
            pytest.fail("CI is set and rabbitmq-server is not installed", pytrace=False)
        pytest.skip("rabbitmq-server is not installed")
    with PrivateBroker(say=Console(stderr=True, highlight=False).print) as node:
        yield node

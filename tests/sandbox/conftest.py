"""One sandbox server for the sandbox's own tests, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.client import SandboxControl
from sandbox.server import SandboxThread


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    with SandboxThread() as sandbox:
        yield sandbox.url


@pytest.fixture(autouse=True)
def control(sandbox_url: str) -> Iterator[SandboxControl]:
    """A clean sandbox: no effects, idempotency keys or faults, and no latency."""
    control = SandboxControl(sandbox_url)
    control.reset()
    control.set_latency(0)
    yield control
    control.set_latency(0)

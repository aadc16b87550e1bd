"""Real paymq processes as an operator runs them, observed: their JSON log lines and the
Prometheus metrics they announce (PAYMQ_METRICS_PORT=0: a free port, named in the log)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from common.settings import Settings
from paymq_tools.launch import launch, paymq_command
from paymq_tools.processes import settings_env
from tests.integration.helpers import wait_until

_METRICS_LINE = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Every line of its log, each of which must be one JSON object."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def metrics_url(self) -> str:
        def announced() -> str | None:
            assert self.popen.poll() is None, self.log.read_text()
            for line in self.lines():
                found = _METRICS_LINE.search(line["message"])
                if found:
                    return f"http://127.0.0.1:{found.group(1)}/metrics"
            return None

        return wait_until(announced, timeout_s=30, what="the metrics endpoint")

    def scrape(self) -> Metrics:
        answer = requests.get(self.metrics_url(), timeout=10)
        assert answer.status_code == 200
        return Metrics(answer.text)


class Metrics:
    def __init__(self, text: str) -> None:
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` that has these labels (others free)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


@contextmanager
def running(
    settings: Settings,
    tmp_path: Path,
    *command: str,
    env: dict[str, str] | None = None,
    exit_code: int = 0,
) -> Iterator[Process]:
    """`paymq <command>` with these settings (plus `env`), metrics on a free port, JSON logs;
    it must exit with `exit_code` by the end of the block (0: on SIGTERM, sent then)."""
    log = tmp_path / f"{command[0]}.log"
    observed = settings.replace(metrics_port=0, log_format="json")
    child = launch(
        command[0],
        paymq_command(*command),
        log_path=log,
        env=settings_env(observed, {"PATH": "/usr/bin:/bin", **(env or {})}),
        cwd=tmp_path,
        stdout_to_log=False,
    )
    process = Process(child.popen, log)
    try:
        yield process
        child.signal(signal.SIGTERM)
        assert child.popen.wait(timeout=30) == exit_code, log.read_text()[-3000:]
    finally:
        if not child.exited():
            child.popen.kill()
            child.popen.wait()

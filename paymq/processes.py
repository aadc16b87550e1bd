"""Real processes for the demo and the benchmark: the sandbox and workers, started and stopped
the way an operator would (SIGTERM drains a worker)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from pydantic import SecretStr

from common.amqp.admin import BrokerAdmin
from common.errors import PaymqError
from common.settings import Settings


class ProcessFailed(PaymqError):
    code = "process_failed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in base.items() if not k.startswith("PAYMQ_")}
    env.pop("AMQP_URL", None)
    env.pop("RABBITMQ_URL", None)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):  # dumped masked; the child needs the value
            text = secret.get_secret_value()
        else:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[f"PAYMQ_{name.upper()}"] = text
    return env


@dataclass
class Fleet:
    """Child processes with their logs in `log_dir`; stopped together."""

    log_dir: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """`paymq <args>` as `name`, with `env` added to the fleet's environment."""
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "paymq", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop them
        )
        log.close()
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ProcessFailed(
                    f"{name} exited with {process.returncode}:\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM everyone (workers finish in-flight payments), then SIGKILL stragglers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes


def wait_for_http(url: str, fleet: Fleet, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fleet.check_alive()
        try:
            if requests.get(url, timeout=1.0).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ProcessFailed(f"{url} did not answer within {timeout_s:.0f} s")


def wait_for_consumers(
    url: str, queues: dict[str, int], fleet: Fleet, timeout_s: float = 60.0
) -> None:
    """Until each queue has at least the given number of consumers."""
    deadline = time.monotonic() + timeout_s
    with BrokerAdmin(url) as admin:
        while time.monotonic() < deadline:
            fleet.check_alive()
            if all(admin.stats(q).consumers >= n for q, n in queues.items()):
                return
            time.sleep(0.1)
    raise ProcessFailed(f"workers did not start consuming within {timeout_s:.0f} s")


def child_environment() -> dict[str, str]:
    return dict(os.environ)

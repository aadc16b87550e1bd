"""Real processes for the demo and the benchmark: the sandbox and workers, started and stopped
the way an operator would (SIGTERM drains a worker).

A `Host` stands in for another machine on this one: its processes run in a process group of
their own, from a working directory of their own that holds their own copy of the keys they
read, and share nothing else with other hosts but what machines would share over the network
(the broker, a PostgreSQL store, the provider).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from pydantic import SecretStr

from common.amqp.admin import BrokerAdmin
from common.keyring import PRIVATE_DIR, TRUSTED_DIR, Keyring, KeyRole
from common.settings import SETTINGS, Settings
from paymq_tools.launch import Child, ProcessFailed, launch, paymq_command

#: Where the kernel takes the source ports of outgoing connections (Linux's default if unread).
_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PORTS_BELOW_EPHEMERAL = 10_000
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, for a server about to start. Taken below the
    ephemeral range: a port the kernel hands out for bind(0) can be taken, before our server
    binds it, as the source port of any outgoing connection (a RabbitMQ node failed to start
    on eaddrinuse so, its port taken by a connection between its sisters). Never the same port
    twice in one process."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(max(1024, low - _PORTS_BELOW_EPHEMERAL), low - 1)  # noqa: S311
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # a crowded machine: whatever the kernel gives
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def settings_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in base.items() if not k.startswith("PAYMQ_")}
    env.pop("AMQP_URL", None)
    env.pop("RABBITMQ_URL", None)
    dumped = settings.model_dump(mode="json")
    for setting in SETTINGS:
        value = dumped[setting.section][setting.name]
        if value is None or getattr(settings, setting.section).read_from_file(setting.name):
            continue  # unset, or read from a file that the child reads too (<VARIABLE>_FILE)
        secret = settings.value(setting)
        if isinstance(secret, SecretStr):  # dumped masked; the child needs the value
            text = secret.get_secret_value()
        else:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        env[setting.variable] = text
    return env


@dataclass(frozen=True)
class Host:
    """Another machine, on this one: the working directory its processes run in."""

    name: str
    directory: Path


def worker_host(name: str, directory: Path, keys_dir: Path, worker_key_id: str) -> Host:
    """A host provisioned as a worker machine would be: `keys/` in its directory holds copies
    (never links: hosts share no file) of only what a worker reads — the keyring, the worker's
    signing key and the card-sealing keys. Producer and gateway keys stay behind."""
    keys = directory / "keys"
    keyring = Keyring.load(keys_dir / TRUSTED_DIR)
    wanted = {worker_key_id} | {
        k.key_id for k in keyring.trusted_keys() if k.role is KeyRole.SEALING
    }
    (keys / PRIVATE_DIR).mkdir(mode=0o700, parents=True)
    shutil.copytree(keys_dir / TRUSTED_DIR, keys / TRUSTED_DIR)
    for key_id in sorted(wanted):
        source = keys_dir / PRIVATE_DIR / f"{key_id}.pem"
        if source.exists():
            shutil.copy2(source, keys / PRIVATE_DIR / source.name)  # keeps the mode, 0600
    return Host(name, directory)


@dataclass
class Fleet:
    """Child processes with their logs in `log_dir`; stopped together."""

    log_dir: Path
    env: dict[str, str]
    children: dict[str, Child] = field(default_factory=dict)
    #: Each host's process group id: the pid of the first process started on it.
    groups: dict[str, int] = field(default_factory=dict)

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return {name: child.popen for name, child in self.children.items()}

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None, host: Host | None = None
    ) -> subprocess.Popen[bytes]:
        """`paymq <args>` as `name`, with `env` added to the fleet's environment; on `host`,
        from its directory and in its process group, else in a session of its own."""
        # Either way, a Ctrl-C in the terminal reaches only us, and we stop them.
        child = launch(
            name,
            paymq_command(*args),
            log_path=self.log_dir / f"{name}.log",
            env={**self.env, **(env or {})},
            cwd=None if host is None else host.directory,
            new_session=host is None,
            process_group=None if host is None else self.groups.get(host.name, 0),
        )
        self.children[name] = child
        if host is not None:
            self.groups.setdefault(host.name, child.pid)
        return child.popen

    def check_alive(self) -> None:
        for child in self.children.values():
            child.check_alive()

    def log_tail(self, name: str, lines: int = 15) -> str:
        return self.children[name].log_tail(lines)

    def stop(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM everyone (workers finish in-flight payments), then SIGKILL stragglers."""
        for child in self.children.values():
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        return {
            name: child.wait(deadline - time.monotonic()) for name, child in self.children.items()
        }


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

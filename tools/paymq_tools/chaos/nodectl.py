"""The distribution's RabbitMQ CLI (`rabbitmqctl` and its siblings) against one node: where
the scripts are and as which user they run, and what the fault suite asks a running node
through them: forced closes, alarms, settings of the `rabbit` application, queue depths.

Running as root on Debian, `rabbitmq-server` and `rabbitmqctl` are wrappers that switch to the
`rabbitmq` user (HOME=/var/lib/rabbitmq, so both use the cookie there): the directory is handed
to that user. As any other user the scripts under /usr/lib/rabbitmq/bin run directly, and the
server and the CLI share the cookie in that user's HOME.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from paymq_tools.errors import ToolError

_LIB_BIN = Path("/usr/lib/rabbitmq/bin")
_SERVICE_USER = "rabbitmq"


class BrokerNodeFailed(ToolError):
    code = "broker_node_failed"


@dataclass(frozen=True)
class QueueDepth:
    name: str
    ready: int
    unacked: int

    @property
    def total(self) -> int:
        return self.ready + self.unacked


def rabbitmq_installed() -> bool:
    return shutil.which("rabbitmq-server") is not None or (_LIB_BIN / "rabbitmq-server").exists()


def service_user() -> pwd.struct_passwd | None:
    """The user the Debian wrappers switch to when run as root, if that is how we run."""
    if os.geteuid() != 0 or shutil.which("rabbitmq-server") is None:
        return None
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        return None


def rabbitmq_command(name: str) -> str:
    if service_user() is None and (_LIB_BIN / name).exists():
        return str(_LIB_BIN / name)
    found = shutil.which(name)
    if found is None:
        raise BrokerNodeFailed(f"{name} is not installed (Debian: apt-get install rabbitmq-server)")
    return found


def _setting_key(key: str) -> str:
    """An Erlang atom we can put in an `eval` unquoted, or an error: no code injection."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise ValueError(f"not a RabbitMQ setting name: {key!r}")
    return key


class NodeControl:
    """What the suite asks a running node through the CLI. PrivateBroker (node.py) is one: it
    names the node, gives the CLI the node's environment, and holds `_restarting` through a
    restart, so that a command waits for the node to be back instead of failing against it."""

    node: str
    _restarting: threading.Lock

    def _env(self) -> dict[str, str]:
        raise NotImplementedError

    # --- faults and inspection ----------------------------------------------------------------

    def close_all_connections(self, reason: str = "paymq chaos") -> None:
        with self._restarting:
            self.ctl("close_all_connections", reason)

    def set_memory_high_watermark(self, fraction: float) -> None:
        """0.0 (or close to it) raises the memory alarm at once; 0.4 is the default."""
        with self._restarting:
            self.ctl("set_vm_memory_high_watermark", str(fraction))

    def set_disk_free_limit(self, limit: str) -> None:
        """A limit above the free space (e.g. "1000000GB") raises the disk alarm at once;
        "50MB" is the default."""
        with self._restarting:
            self.ctl("set_disk_free_limit", limit)

    def app_setting(self, key: str) -> int | None:
        """An integer setting of the `rabbit` application as the node runs now (None: unset)."""
        answer = self.ctl("eval", f"application:get_env(rabbit, {_setting_key(key)}).")
        found = re.fullmatch(r"\{ok,(\d+)\}", answer.stdout.decode().strip())
        return int(found.group(1)) if found else None

    def set_app_setting(self, key: str, value: int | None) -> None:
        """Change a setting of the running node (gone at its next restart); None unsets it.
        Channels read some settings when they open: consumer_timeout applies to channels
        opened afterwards, channel_tick_interval from each channel's next tick."""
        key = _setting_key(key)
        with self._restarting:
            if value is None:
                self.ctl("eval", f"application:unset_env(rabbit, {key}).")
            else:
                self.ctl("eval", f"application:set_env(rabbit, {key}, {int(value)}).")

    @contextlib.contextmanager
    def app_settings(self, settings: Mapping[str, int]) -> Iterator[None]:
        """These settings while the block runs; the previous values (or unset) afterwards."""
        previous = {key: self.app_setting(key) for key in settings}
        try:
            for key, value in settings.items():
                self.set_app_setting(key, value)
            yield
        finally:
            for key, earlier in previous.items():
                self.set_app_setting(key, earlier)

    def queue_depths(self, prefix: str = "") -> list[QueueDepth]:
        listed = self.ctl(
            "list_queues",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        depths = []
        for line in listed.stdout.decode().splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0].startswith(prefix):
                depths.append(QueueDepth(parts[0], int(parts[1]), int(parts[2])))
        return depths

    def ctl(
        self,
        *args: str,
        timeout_s: float = 60.0,
        check: bool = True,
        cookie: str | None = None,
        tool: str = "rabbitmqctl",
    ) -> subprocess.CompletedProcess[bytes]:
        """`rabbitmqctl` (or another CLI tool of the distribution's) against this node;
        `cookie` for a node whose Erlang cookie was changed (a partition, cluster.py)."""
        extra = ["--erlang-cookie", cookie] if cookie is not None else []
        done = subprocess.run(  # noqa: S603 - the distribution's CLI, fixed arguments
            [rabbitmq_command(tool), "-q", "-n", self.node, *extra, *args],
            env=self._env(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).decode()[-500:]
            raise BrokerNodeFailed(f"{tool} {args[0]} on {self.node} failed: {detail}")
        return done

"""A private RabbitMQ node for the fault-injection suite, so broker-wide faults (restarts,
`close_all_connections`, alarms) touch nothing but the suite's own processes.

The node runs from the distribution's `rabbitmq-server`, configured only through environment
variables and files in a temporary directory: its own node name, AMQP and distribution ports,
data, logs, pid file, an empty plugin list and a config file that listens on 127.0.0.1 only.
Stopping it and starting it again on the same directory is a broker restart: durable quorum
queues and their messages survive.

Which scripts run it, as which user (as root on Debian, the `rabbitmq` user, to whom the
directory is handed), and what the suite asks the running node through the CLI (forced closes,
alarms, settings, queue depths): nodectl.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from paymq_tools.broker import broker_answers
from paymq_tools.chaos.nodectl import (
    BrokerNodeFailed,
    NodeControl,
    rabbitmq_command,
    service_user,
)
from paymq_tools.processes import free_port

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
#: A node restarted under load now and then fails to come up (its old VM still going away);
#: a restart tries this many starts, clearing what is left of the node between them.
RESTART_ATTEMPTS = 3
VM_EXIT_TIMEOUT_S = 15.0


class PrivateBroker(NodeControl):
    """One RabbitMQ node of our own; a context manager that always stops it and removes its
    directory.

        with PrivateBroker(say=print) as broker:
            run_things(broker.url)
            broker.restart()
    """

    def __init__(
        self,
        *,
        say: Callable[[str], None] = lambda _line: None,
        keep: bool = False,
        config: Sequence[str] = (),
        management: bool = False,
    ):
        """`config`: more lines of rabbitmq.conf (a cluster's partition handling);
        `management`: the management API on a port of its own (`management_url`)."""
        self._say = say
        self._keep = keep
        self.management_port = free_port() if management else None
        self._config = tuple(config)
        self.node = f"paymq-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.directory = Path(tempfile.mkdtemp(prefix="paymq-chaos-node-"))
        self.restarts = 0
        self._running = False
        # A restart and a fault command never overlap: a forced close or an alarm waits for
        # the node to be back, instead of failing against a node that is down.
        self._restarting = threading.Lock()
        self._prepare()

    def __enter__(self) -> PrivateBroker:
        try:
            self.start()
        except BaseException:  # a failed or interrupted start leaves nothing behind either
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the node (on its existing data, if any) and return once it accepts AMQP."""
        began = time.monotonic()
        self._say(f"starting private RabbitMQ node {self.node} on 127.0.0.1:{self.port}...")
        launched = subprocess.run(  # noqa: S603 - the distribution's script, fixed arguments
            [rabbitmq_command("rabbitmq-server"), "-detached"],
            env=self._env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if launched.returncode != 0:
            raise BrokerNodeFailed(f"rabbitmq-server failed: {launched.stderr.decode()[-500:]}")
        self._running = True
        self._await_startup(began)
        self._say(f"node up in {time.monotonic() - began:.1f} s")

    def stop(self) -> None:
        """Stop the whole node (rabbitmqctl stop waits for the process to exit)."""
        if not self._running:
            return
        try:
            done = self.ctl("stop", str(self._pid_file), timeout_s=STOP_TIMEOUT_S, check=False)
            stopped = done.returncode == 0
        except subprocess.TimeoutExpired:
            stopped = False
        if not stopped:
            self._kill_by_pid_file()
        self._running = False

    def restart(self) -> None:
        """A full broker restart on the same data directory."""
        with self._restarting:
            self._say(f"restarting {self.node}...")
            self.stop()
            for attempt in range(1, RESTART_ATTEMPTS + 1):
                try:
                    self.start()
                    break
                except (BrokerNodeFailed, subprocess.TimeoutExpired) as exc:
                    if attempt == RESTART_ATTEMPTS:
                        raise
                    self._say(f"{self.node} did not come back ({exc}); starting it again")
                    self._running = True  # whatever did start must be stopped first
                    self.stop()
            self.restarts += 1

    @property
    def management_url(self) -> str | None:
        if self.management_port is None:
            return None
        return f"http://guest:guest@127.0.0.1:{self.management_port}"

    def kill(self) -> None:
        """SIGKILL the node's VM, as a crash or an OOM kill would: no goodbye to its peers."""
        with self._restarting:
            self._say(f"killing {self.node} (SIGKILL)")
            self._kill_by_pid_file()
            self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._kill_by_pid_file()  # in case a stop failed half-way
            if self._keep:
                self._say(f"kept the node's data and logs in {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)

    # --- details ------------------------------------------------------------------------------

    @property
    def _pid_file(self) -> Path:
        return self.directory / "node.pid"

    def _prepare(self) -> None:
        (self.directory / "mnesia").mkdir()
        (self.directory / "log").mkdir()
        plugins = "rabbitmq_management" if self.management_port is not None else ""
        (self.directory / "enabled_plugins").write_text(f"[{plugins}].\n")
        # Only our port, only loopback: the shared node's /etc/rabbitmq config is not read.
        lines = [f"listeners.tcp.1 = 127.0.0.1:{self.port}", *self._config]
        if self.management_port is not None:
            lines += [
                "management.tcp.ip = 127.0.0.1",
                f"management.tcp.port = {self.management_port}",
            ]
        (self.directory / "rabbitmq.conf").write_text("".join(f"{line}\n" for line in lines))
        user = service_user()
        if user is not None:
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.directory / "log"),
            RABBITMQ_PID_FILE=str(self._pid_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.directory / "enabled_plugins"),
            # Without the extension: RabbitMQ appends .conf.
            RABBITMQ_CONFIG_FILE=str(self.directory / "rabbitmq"),
        )
        return env

    def _await_startup(self, began: float) -> None:
        deadline = began + START_TIMEOUT_S
        # The AMQP port opens at the end of the boot; polling it costs nothing, unlike a
        # rabbitmqctl call (an Erlang VM start each time).
        while time.monotonic() < deadline:
            if broker_answers(self.url, timeout_s=2.0):
                self.ctl("await_startup", "--timeout", "30", timeout_s=45)
                return
            time.sleep(0.2)
        log = self.directory / "log" / f"{self.node}.log"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
        raise BrokerNodeFailed(f"{self.node} did not start in {START_TIMEOUT_S:.0f} s:\n{tail}")

    def _kill_by_pid_file(self) -> None:
        """SIGKILL our node's VM if it is still there, and wait for it to be gone (a new VM
        under the same node name cannot start while the old one is registered); never a
        process that merely reused the pid (the VM's environment names our directory)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self._pid_file.read_text().strip())
            proc = Path(f"/proc/{pid}")
            if (proc / "comm").read_text().strip() != "beam.smp":
                return
            if str(self.directory).encode() not in (proc / "environ").read_bytes():
                return
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + VM_EXIT_TIMEOUT_S
            while proc.exists() and time.monotonic() < deadline:
                time.sleep(0.1)

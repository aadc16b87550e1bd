"""A private RabbitMQ node for the fault-injection suite, so broker-wide faults (restarts,
`close_all_connections`, alarms) touch nothing but the suite's own processes.

The node runs from the distribution's `rabbitmq-server`, configured only through environment
variables and files in a temporary directory: its own node name, AMQP and distribution ports,
data, logs, pid file, an empty plugin list and a config file that listens on 127.0.0.1 only.
Stopping it and starting it again on the same directory is a broker restart: durable quorum
queues and their messages survive.

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
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from paymq_tools.broker import broker_answers
from paymq_tools.errors import ToolError
from paymq_tools.processes import free_port

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
#: A node restarted under load now and then fails to come up (its old VM still going away);
#: a restart tries this many starts, clearing what is left of the node between them.
RESTART_ATTEMPTS = 3
VM_EXIT_TIMEOUT_S = 15.0
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


def _service_user() -> pwd.struct_passwd | None:
    """The user the Debian wrappers switch to when run as root, if that is how we run."""
    if os.geteuid() != 0 or shutil.which("rabbitmq-server") is None:
        return None
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        return None


def _command(name: str) -> str:
    if _service_user() is None and (_LIB_BIN / name).exists():
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


class PrivateBroker:
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
            [_command("rabbitmq-server"), "-detached"],
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
        user = _service_user()
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
            [_command(tool), "-q", "-n", self.node, *extra, *args],
            env=self._env(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).decode()[-500:]
            raise BrokerNodeFailed(f"{tool} {args[0]} on {self.node} failed: {detail}")
        return done

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

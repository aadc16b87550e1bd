"""The one way the tools start a child process: its output in a log file, readiness polled while
it is checked to be alive, and a stop that asks first (SIGTERM: a worker drains) and kills after
a timeout. The demo, the benchmarks, the fault-injection suite and the tests start every paymq
process, anvil and localstripe through here."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from paymq_tools.errors import ToolError

READY_POLL_S = 0.1


class ProcessFailed(ToolError):
    code = "process_failed"


def paymq_command(*args: str) -> list[str]:
    """`paymq <args>` with this interpreter, so a child runs the same installation."""
    return [sys.executable, "-m", "paymq", *args]


@dataclass
class Child:
    """A started child process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def check_alive(self) -> None:
        if self.exited():
            raise ProcessFailed(
                f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], *, what: str, timeout_s: float) -> None:
        """Poll `ready` until it holds; fail at once, with the log's end, if the child exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if ready():
                return
            time.sleep(READY_POLL_S)
        raise ProcessFailed(f"{self.name}: {what} did not happen within {timeout_s:.0f} s")

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        if not self.exited():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        """The exit status; SIGKILL after `timeout_s` if it has not exited by then."""
        try:
            return self.popen.wait(max(0.1, timeout_s))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout_s)


def launch(
    name: str,
    command: list[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout_to_log: bool = True,
    new_session: bool = False,
    process_group: int | None = None,
) -> Child:
    """Start `command` as `name`, its stderr (and stdout, unless `stdout_to_log` is false: then
    it is discarded) written to `log_path`, which starts empty. `new_session` keeps a Ctrl-C in
    the terminal from reaching it; `process_group` puts it in an existing group (0: a new group
    of its own)."""
    with log_path.open("wb") as log:
        popen = subprocess.Popen(  # noqa: S603 - our own commands, fixed arguments
            command,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=log if stdout_to_log else subprocess.DEVNULL,
            stderr=log,
            start_new_session=new_session,
            process_group=process_group,
        )
    return Child(name, popen, log_path)

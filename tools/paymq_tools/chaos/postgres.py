"""A private PostgreSQL server for the store faults, so stopping or stalling the database touches
nothing but the suite: the machine's own server (on 5432) is never used by them.

`initdb` into a temporary directory (trust authentication, superuser `postgres`), then the
server on a free port, listening on 127.0.0.1 only, its Unix socket in that directory.
`stop()` is `pg_ctl stop -m immediate` (the server dies as if killed: no checkpoint, crash
recovery at the next start), `start()` starts it again on the same data directory and port.
Committed data survives both. fsync is off: a process crash loses nothing with it off, only an
operating system crash would, and initdb and commits are much faster.

PostgreSQL refuses to run as root. As root, the binaries run as the `postgres` user through
`runuser -u postgres --`, and the directory is handed to that user; as anyone else they run
directly. The binaries are Debian's, in /usr/lib/postgresql/<version>/bin (not on PATH).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from paymq_tools.errors import ToolError
from paymq_tools.processes import free_port

_DEBIAN_BINARIES = Path("/usr/lib/postgresql")
_SERVICE_USER = "postgres"
START_TIMEOUT_S = 60


class PostgresFailed(ToolError):
    code = "postgres_failed"


def postgres_binaries() -> Path | None:
    """The directory of initdb and pg_ctl: the newest Debian version's, else PATH's."""
    versions = sorted(
        (p for p in _DEBIAN_BINARIES.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def postgres_installed() -> bool:
    return postgres_binaries() is not None and (os.geteuid() != 0 or _service_user() is not None)


def _service_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        return None


class PrivatePostgres:
    """A PostgreSQL server of our own; a context manager that always stops it and removes its
    directory (kept with `keep`).

        with PrivatePostgres(say=print) as server:
            use(server.admin_url)
            server.stop()
            server.start()
    """

    def __init__(self, *, say: Callable[[str], None] = lambda _line: None, keep: bool = False):
        binaries = postgres_binaries()
        if binaries is None:
            raise PostgresFailed("PostgreSQL is not installed (Debian: postgresql)")
        self._bin = binaries
        self._say = say
        self._keep = keep
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="paymq-chaos-pg-"))
        self.data = self.directory / "data"
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.stops = 0
        self._running = False

    def __enter__(self) -> PrivatePostgres:
        try:
            self.create()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{database}"

    # --- lifecycle ----------------------------------------------------------------------------

    def create(self) -> None:
        user = _service_user() if os.geteuid() == 0 else None
        if user is not None:
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip

    def start(self) -> None:
        began = time.monotonic()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off "
            "-c full_page_writes=off"
        )
        self._running = True
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"),
                  "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start")  # fmt: skip
        self._say(f"PostgreSQL on 127.0.0.1:{self.port} up in {time.monotonic() - began:.1f} s")

    def stop(self) -> None:
        """`pg_ctl stop -m immediate`: every server process quits at once, as if killed."""
        if not self._running:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._running = False
        self.stops += 1

    def close(self) -> None:
        try:
            if self._running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except PostgresFailed:
            self._kill_postmaster()
        finally:
            self._running = False
            if self._keep:
                self._say(f"kept PostgreSQL's data and log in {self.directory}")
            else:
                shutil.rmtree(self.directory, ignore_errors=True)

    # --- details ------------------------------------------------------------------------------

    def _run(self, binary: str, *args: str) -> None:
        command = [str(self._bin / binary), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _SERVICE_USER, "--", *command]
        done = subprocess.run(  # noqa: S603 - the distribution's binaries, fixed arguments
            command,
            capture_output=True,
            timeout=START_TIMEOUT_S + 30,
            check=False,
            cwd=self.directory,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace")[-800:]
            raise PostgresFailed(f"{binary} {args[-1]} failed: {detail}")

    def _kill_postmaster(self) -> None:
        """SIGKILL our server if pg_ctl could not stop it; never a process that merely reused
        the pid (its command line names our data directory)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            if str(self.data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)

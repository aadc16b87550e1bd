"""Another process holding a SQLite store's write lock: what a backup tool, a migration or an
operator's shell left in a transaction does to the workers sharing the file.

`hold_write_lock` is the body of that process (`paymq chaos hold-sqlite-lock FILE --seconds
N`, started by the lock disturbance): BEGIN IMMEDIATE takes the write lock (in WAL mode readers
go on, every other writer waits for it), then nothing for N seconds, then ROLLBACK. The journal
mode is the file's own: the lock holder changes nothing in it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

#: What the holder prints once it holds the lock (the disturbance waits for this line).
HOLDING = "holding the write lock"
#: The holder waits this long for the workers' transactions to let it in.
ACQUIRE_TIMEOUT_S = 30.0


def hold_write_lock(
    path: Path,
    seconds: float,
    *,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    if not path.exists():  # connect() would create an empty database instead
        raise FileNotFoundError(path)
    connection = sqlite3.connect(path, timeout=ACQUIRE_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        say(f"{HOLDING} of {path} for {seconds:g} s")
        sleep(seconds)
        connection.execute("ROLLBACK")
        say("released")
    finally:
        connection.close()


def write_locked(path: Path) -> bool:
    """Whether another connection holds the file's write lock now (asks without waiting)."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    else:
        connection.execute("ROLLBACK")
        return False
    finally:
        connection.close()

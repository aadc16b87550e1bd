"""Files that hold secrets or their digests (API keys, webhook endpoints): written whole and
owner-only, and read again by a running process whenever they change."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from common.errors import ConfigurationError

logger = logging.getLogger("paymq.config")

T = TypeVar("T")


def write_private_json(path: Path, body: Any) -> None:
    """Replace `path` atomically with `body` as JSON, mode 0600: a reader sees the old content
    or the new, never half, and nobody else can read either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(descriptor, "w") as file:
        json.dump(body, file, indent=2)
    temporary.replace(path)


class Reloading(Generic[T]):
    """`load(path)` as the file (or the directory's files) is now: loaded again whenever it
    changes (inode, mtime, size), looked at no more often than every `check_every_s`, so a
    change made with the CLI counts for a running process at its next look. A file that
    breaks meanwhile keeps the last good value and is reported once; one that is broken at
    start-up raises ConfigurationError."""

    def __init__(
        self, path: Path, load: Callable[[Path], T], *, check_every_s: float = 0.0
    ) -> None:
        self.path = path
        self._load = load
        self._check_every_s = check_every_s
        self._lock = threading.Lock()
        self._seen = self._signature()
        self._checked_s = time.monotonic()
        self._value = load(path)

    def current(self) -> T:
        now_s = time.monotonic()
        if now_s - self._checked_s < self._check_every_s:
            return self._value
        self._checked_s = now_s
        signature = self._signature()
        with self._lock:
            if signature != self._seen:
                self._seen = signature
                try:
                    self._value = self._load(self.path)
                    logger.info("%s changed: read again", self.path)
                except ConfigurationError as exc:
                    logger.error("%s unusable; keeping what it said before: %s", self.path, exc)
            return self._value

    def _signature(self) -> object:
        """A file's inode, mtime and size; for a directory, those of every file in it."""
        try:
            if self.path.is_dir():
                return sorted(
                    (entry.name, info.st_ino, info.st_mtime_ns, info.st_size)
                    for entry in self.path.iterdir()
                    if entry.is_file() and (info := entry.stat())
                )
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

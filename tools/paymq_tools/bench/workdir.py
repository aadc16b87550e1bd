"""A bench run's own directory: its keys, its store of signed results, its processes' logs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

console = Console(stderr=True, highlight=False)


def tidy(work_dir: Path, *, succeeded: bool, keep: bool) -> None:
    """A run that did what it should leaves nothing behind: its private keys, its store and
    its logs are of no use afterwards (and were 5-20 MB a run). One that did not, or one asked
    to (`--keep`), keeps them for a look and says where."""
    if succeeded and not keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        console.print(f"kept {work_dir}: the run's logs, keys and store")


@dataclass
class RunDirectory:
    path: Path
    #: Set by the run once it did what it should; left False, the directory is kept.
    succeeded: bool = False


@contextlib.contextmanager
def run_directory(prefix: str, *, keep: bool) -> Iterator[RunDirectory]:
    """A fresh directory under $TMPDIR for one run, tidied as the run ends (`tidy`): kept when
    the run failed, raised or was interrupted."""
    run = RunDirectory(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        yield run
    finally:
        tidy(run.path, succeeded=run.succeeded, keep=keep)

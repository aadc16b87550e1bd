"""A bench run's own directory: its keys, its store of signed results, its processes' logs."""

from __future__ import annotations

import shutil
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

"""What a run is doing, on the terminal: published and settled payments, and the faults so far."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: "kills 3 · crashes 1 · broker restarts 1": what the disturbances did so far.
Tally = Callable[[], str]


class RunProgress:
    def __init__(self, console: Console, tally: Tally) -> None:
        self._tally = tally
        self._progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[tally]}"),
            console=console,
            transient=False,
        )
        self._publish = self._progress.add_task("published", total=None, tally="")
        self._results = self._progress.add_task("settled", total=None, tally="")

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def published(self, done: int, total: int) -> None:
        self._progress.update(self._publish, completed=done, total=total, tally=self._tally())

    def settled(self, done: int, total: int) -> None:
        self._progress.update(self._results, completed=done, total=total, tally=self._tally())

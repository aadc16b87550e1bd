"""The bench's figures, printed: a table on stderr, or one line of JSON on stdout."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from paymq_tools.bench.accounting import HostShare

console = Console(stderr=True, highlight=False)

Figures = dict[str, object]


def report(figures: Figures, shares: list[HostShare], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**figures, "per_host": [asdict(s) for s in shares]}))
        return
    for key, value in figures.items():
        shown = (
            "  ".join(f"{name} {figure}" for name, figure in value.items())
            if isinstance(value, dict)
            else value
        )
        console.print(f"{key:>32}: {shown}")
    if len(shares) > 1:
        console.print(f"{'hosts in':>32}: {Path(shares[0].directory).parent}")
        for share in shares:
            console.print(
                f"{share.host:>32}: {share.workers} workers, {share.payments} payments, "
                f"{share.worker_cpu_ms_per_payment} worker CPU ms each"
            )

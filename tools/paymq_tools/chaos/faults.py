"""Sandbox fault rules aimed at single payments (docs/sandbox.md, fault injection)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """A sandbox fault rule (docs/sandbox.md) for one payment's provider calls."""

    action: str
    times: int = 1
    status: int = 500
    delay_s: float = 30.0
    retry_after_s: int = 1


@dataclass(frozen=True)
class FaultShare:
    """This fault for about `share` of the payments (0..1); only for successes if
    `successes_only` (a provider lookup finds no decline, so a decline whose every answer was
    lost can only end `failed`)."""

    share: float
    fault: Fault
    successes_only: bool = False


#: Card payments whose merchant reference starts with this kill every worker that takes them
#: (after the provider call) in the poison scenario.
POISON_PREFIX = "poison-"

"""What to do after a failed provider attempt: retry after a delay, or give up. Pure.

Delays come from fixed tiers (one delay queue each): attempt n waits tier n, and every later
attempt the last tier, which makes the back-off exponential when the tiers are, and capped.
A 429 waits at least as long as the provider asked: the next tier at or above the wait, and
when the wait is longer than the last tier, the message cycles through the last tier until its
not-before time (see workers/retrystate.py). Waits are capped at MAX_WAIT_MS.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import OutcomeUnknown, PaymqError, RateLimited, RetryableError


@dataclass(frozen=True)
class RetryPolicy:
    delays_ms: tuple[int, ...]
    #: Provider attempts for one payment, the first included.
    max_attempts: int


#: A provider asking for more than a day is treated as asking for a day.
MAX_WAIT_MS = 86_400_000


@dataclass(frozen=True)
class Retry:
    #: The retry tier to go through.
    delay_ms: int
    #: How long to wait before the next attempt; more than `delay_ms` only for long Retry-After.
    wait_ms: int


@dataclass(frozen=True)
class GiveUp:
    #: True when the last error left the outcome unknown: the payment is in doubt, not failed.
    in_doubt: bool


def is_transient(error: PaymqError) -> bool:
    return isinstance(error, RetryableError | OutcomeUnknown)


def decide(
    error: PaymqError, attempts_made: int, policy: RetryPolicy, *, earlier_unknown: bool = False
) -> Retry | GiveUp:
    """`attempts_made` counts provider attempts so far, including the one that raised `error`;
    `earlier_unknown` says an earlier attempt's outcome was unknown (it may have moved money,
    so giving up then leaves the payment in doubt even if the last error was a clean refusal)."""
    if not is_transient(error):
        raise ValueError(f"{type(error).__name__} is permanent; nothing to retry")
    if attempts_made >= policy.max_attempts:
        return GiveUp(in_doubt=earlier_unknown or isinstance(error, OutcomeUnknown))
    tiers = policy.delays_ms
    delay_ms = tiers[min(attempts_made - 1, len(tiers) - 1)]
    wait_ms = delay_ms
    if isinstance(error, RateLimited):
        asked_s = error.retry_after_s
        asked_ms = MAX_WAIT_MS if not asked_s < MAX_WAIT_MS / 1000 else int(asked_s * 1000)
        wait_ms = max(asked_ms, delay_ms)
        delay_ms = tier_for(wait_ms, tiers)
    return Retry(delay_ms, wait_ms)


def tier_for(wait_ms: int, tiers: tuple[int, ...]) -> int:
    """The shortest tier that waits at least `wait_ms`, or the longest tier."""
    return next((t for t in tiers if t >= wait_ms), tiers[-1])

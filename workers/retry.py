"""What to do after a failed provider attempt: retry after a delay, or give up. Pure.

Delays come from fixed tiers (one delay queue each): attempt n waits tier n, and every later
attempt the last tier, which makes the back-off exponential when the tiers are, and capped.
A 429 waits at least as long as the provider asked, rounded up to a tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import OutcomeUnknown, PaymqError, RateLimited, RetryableError


@dataclass(frozen=True)
class RetryPolicy:
    delays_ms: tuple[int, ...]
    #: Provider attempts for one payment, the first included.
    max_attempts: int


@dataclass(frozen=True)
class Retry:
    delay_ms: int


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
    if isinstance(error, RateLimited):
        asked_ms = int(error.retry_after_s * 1000)
        delay_ms = next((t for t in tiers if t >= max(asked_ms, delay_ms)), tiers[-1])
    return Retry(delay_ms)

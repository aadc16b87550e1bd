"""Provider routing for a channel: an ordered list of providers, a circuit breaker each, and
failover only where it cannot pay twice.

The rule (RELIABILITY.md I2): a payment goes to another provider only when every provider it
went to before surely did not act on it.
- Surely not acted: the connection was refused, the provider answered 503 before any effect or
  429, or its breaker is open and nothing was sent. Then the next provider is tried. When every
  one was skipped for an open circuit, CircuitOpen says when one may be tried again: nothing was
  sent, so that is no attempt, and the payment waits (bounded by its expiry).
- May have acted (a timeout after sending, a 5xx, a reset; OutcomeUnknown): the error goes up
  and the payment stays pinned to that provider. Every later attempt, retry, redelivery and
  takeover goes to it alone, with the same idempotency key, until the outcome is known.

Before a payment is sent to a provider other than the one the store has for it, the store
records the new one (`Binding.bind`). So a worker that dies mid-call leaves behind the name of
the provider that may have acted, and the next worker, which takes over with the outcome
unknown, goes there and nowhere else. A new payment is stored with the route's first provider
when it is claimed, so the usual path costs no extra write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from common.errors import (
    CircuitOpen,
    OutcomeUnknown,
    PaymqError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    RetryableError,
)
from common.metrics import Metrics
from workers.providers.breaker import CircuitBreaker
from workers.providers.timing import timed_call

logger = logging.getLogger("paymq.route")


class Named(Protocol):
    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=Named)
R = TypeVar("R")


@dataclass(frozen=True)
class Binding:
    """Where the store says a payment goes, as read when its claim was taken."""

    payment_id: str
    #: The provider the payment was last sent to, or is to be sent to first.
    provider: str | None
    #: True when that provider may have acted (an unknown outcome): no other may be tried.
    pinned: bool
    #: Records (provider, reason) in the store before the payment is sent to that provider.
    bind: Callable[[str, str], None]


class Route(Generic[P]):
    def __init__(
        self,
        channel: str,
        providers: Sequence[P],
        breakers: Mapping[str, CircuitBreaker],
        metrics: Metrics | None = None,
    ) -> None:
        if not providers:
            raise ValueError(f"the {channel} channel needs at least one provider")
        names = [provider.name for provider in providers]
        if len(set(names)) != len(names):
            raise ValueError(f"the {channel} route names a provider twice: {names}")
        self.channel = channel
        self._providers = tuple(providers)
        self._by_name = {provider.name: provider for provider in providers}
        self._breakers = breakers
        self._metrics = metrics or Metrics()

    @property
    def primary(self) -> str:
        return self._providers[0].name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(provider.name for provider in self._providers)

    def call(
        self,
        binding: Binding,
        act: Callable[[P], R],
        accepts: Callable[[P], bool] = lambda _provider: True,
        recover: Callable[[P], R | None] | None = None,
    ) -> R:
        """`act` on the first provider that can take the payment; see the module docstring.

        For a pinned payment, `recover` first asks the provider for what an earlier attempt
        did (by our reference), and `act` runs only when it has nothing. Idempotency keys alone
        do not cover this: a provider may forget them (Stripe after 24 hours) or ignore them
        (localstripe), and a worker that died after the call left no record of it."""
        if binding.pinned and recover is not None:
            act = _recovering(binding.payment_id, recover, act)
        candidates = self._candidates(binding, accepts)
        current = binding.provider
        passed: list[str] = []
        reopens_in_ms: list[int] = []
        last_error: PaymqError | None = None
        for provider in candidates:
            breaker = self._breakers[provider.name]
            if not breaker.allow():
                passed.append(f"{provider.name}: circuit open")
                reopens_in_ms.append(breaker.reopens_in_ms())
                continue
            if provider.name != current:
                reason = _routing_reason(provider.name, passed)
                try:
                    binding.bind(provider.name, reason)
                except BaseException:
                    breaker.released()
                    raise
                current = provider.name
                if passed:
                    logger.warning("payment %s: %s", binding.payment_id, reason)
            with timed_call(self._metrics, provider.name, "execute") as call:
                outcome = _attempt(breaker, provider, act)
                if isinstance(outcome, RetryableError):
                    call.outcome = "retryable"
            if not isinstance(outcome, RetryableError):
                return outcome
            last_error = outcome
            passed.append(f"{provider.name}: {last_error.code}")
        if last_error is not None:
            raise last_error
        raise CircuitOpen(
            f"no {self.channel} provider available ({'; '.join(passed)})",
            retry_after_s=min(reopens_in_ms) / 1000,
        )

    def _candidates(self, binding: Binding, accepts: Callable[[P], bool]) -> list[P]:
        if binding.pinned:
            pinned = self._by_name.get(binding.provider or "")
            if pinned is None:
                # Configuration changed under an unresolved payment: wait, and let it go in
                # doubt; never guess another provider.
                raise ProviderUnavailable(
                    f"payment is bound to provider {binding.provider!r}, which the "
                    f"{self.channel} route ({', '.join(self.names)}) does not have",
                    code="provider_not_configured",
                )
            return [pinned]
        candidates = [provider for provider in self._providers if accepts(provider)]
        if not candidates:
            raise ProviderRejected(
                f"no {self.channel} provider ({', '.join(self.names)}) accepts this payment's "
                "source",
                code="no_provider_for_source",
            )
        return candidates


def _recovering(
    payment_id: str, recover: Callable[[P], R | None], act: Callable[[P], R]
) -> Callable[[P], R]:
    def recover_or_act(provider: P) -> R:
        earlier = recover(provider)
        if earlier is not None:
            logger.info("payment %s: %s already has it; not sent again", payment_id, provider.name)
            return earlier
        return act(provider)

    return recover_or_act


def _attempt(breaker: CircuitBreaker, provider: P, act: Callable[[P], R]) -> R | RetryableError:
    """One call, with its lesson for the breaker. Returns the error that allows the next
    provider (it surely did not act); raises every other."""
    try:
        result = act(provider)
    except RateLimited as exc:
        breaker.succeeded()  # it answered: alive, only busy
        return exc
    except RetryableError as exc:
        breaker.failed()
        return exc
    except OutcomeUnknown:
        breaker.failed()
        raise  # it may have acted: never another provider
    except PaymqError:
        breaker.succeeded()  # a decline or a refusal is a sane answer
        raise
    except BaseException:
        breaker.released()  # a bug of ours: nothing learned about the provider
        raise
    breaker.succeeded()
    return result


def _routing_reason(target: str, passed: list[str]) -> str:
    if not passed:
        return f"routed to {target}"
    return f"routed to {target} after {'; '.join(passed)}"

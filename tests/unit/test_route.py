"""Provider routing: failover only when the provider surely did not act, pinning otherwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from common.clock import FixedClock
from common.errors import (
    CircuitOpen,
    PaymentDeclined,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StoreUnavailable,
)
from workers.providers.base import ProviderReceipt
from workers.providers.breaker import BreakerState, CircuitBreaker
from workers.providers.route import Binding, Route

Answer = ProviderReceipt | Exception


@dataclass
class Journal:
    """Everything that happened, in order: binds and provider calls."""

    entries: list[str] = field(default_factory=list)
    fail_binds: Exception | None = None

    def binding(self, provider: str | None = "stripe", *, pinned: bool = False) -> Binding:
        return Binding(payment_id="p-1", provider=provider, pinned=pinned, bind=self.bind)

    def bind(self, provider: str, reason: str) -> None:
        if self.fail_binds is not None:
            raise self.fail_binds
        self.entries.append(f"bind {provider}: {reason}")


class ScriptedProvider:
    """Answers from a script (then succeeds); takes only tokens with its prefix."""

    def __init__(self, name: str, journal: Journal, *answers: Answer, prefix: str = "") -> None:
        self.name = name
        self.prefix = prefix
        self._journal = journal
        self._answers = list(answers)

    def accepts(self, token: str) -> bool:
        return token.startswith(self.prefix)

    def pay(self) -> ProviderReceipt:
        self._journal.entries.append(f"call {self.name}")
        answer = self._answers.pop(0) if self._answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer or ProviderReceipt(self.name, f"{self.name}-ref")

    @property
    def calls(self) -> int:
        return self._journal.entries.count(f"call {self.name}")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(0)


@pytest.fixture
def journal() -> Journal:
    return Journal()


def route_of(clock: FixedClock, *providers: ScriptedProvider) -> Route[ScriptedProvider]:
    breakers = {
        p.name: CircuitBreaker(p.name, clock, failures_to_open=3, open_ms=10_000) for p in providers
    }
    return Route("card", list(providers), breakers)


def pay(
    route: Route[ScriptedProvider],
    binding: Binding,
    token: str = "",
    recover: Callable[[ScriptedProvider], ProviderReceipt | None] | None = None,
) -> ProviderReceipt:
    return route.call(
        binding, lambda p: p.pay(), accepts=lambda p: p.accepts(token), recover=recover
    )


def test_the_first_provider_takes_the_payment_without_an_extra_store_write(
    clock: FixedClock, journal: Journal
) -> None:
    stripe, sandbox = ScriptedProvider("stripe", journal), ScriptedProvider("sandbox", journal)
    receipt = pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert receipt.provider == "stripe"
    assert journal.entries == ["call stripe"]


@pytest.mark.parametrize(
    "refusal",
    [
        ProviderUnavailable("connection refused"),
        ProviderUnavailable("503 before any effect", code="processing_error"),
        RateLimited("429", retry_after_s=5),
    ],
    ids=["refused", "503-before-effect", "429"],
)
def test_a_provider_that_surely_did_not_act_fails_over_after_recording_the_next_one(
    clock: FixedClock, journal: Journal, refusal: Exception
) -> None:
    stripe = ScriptedProvider("stripe", journal, refusal)
    sandbox = ScriptedProvider("sandbox", journal)
    receipt = pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert receipt.provider == "sandbox"
    assert journal.entries[0] == "call stripe"
    assert journal.entries[1].startswith("bind sandbox: routed to sandbox after stripe: ")
    assert journal.entries[2] == "call sandbox", "recorded before it was sent"


@pytest.mark.parametrize(
    "unknown",
    [ProviderTimeout("read timeout"), ProviderServerError("500")],
    ids=["timeout", "5xx"],
)
def test_an_unknown_outcome_never_fails_over(
    clock: FixedClock, journal: Journal, unknown: Exception
) -> None:
    stripe = ScriptedProvider("stripe", journal, unknown)
    sandbox = ScriptedProvider("sandbox", journal)
    with pytest.raises(type(unknown)):
        pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert sandbox.calls == 0
    assert journal.entries == ["call stripe"]


def test_a_decline_is_an_answer_not_a_reason_to_try_elsewhere(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, PaymentDeclined("no", code="do_not_honor"))
    sandbox = ScriptedProvider("sandbox", journal)
    with pytest.raises(PaymentDeclined):
        pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert sandbox.calls == 0


def test_a_pinned_payment_goes_only_to_its_provider_even_when_that_one_refuses(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal)
    sandbox = ScriptedProvider("sandbox", journal, ProviderUnavailable("refused"))
    route = route_of(clock, stripe, sandbox)
    with pytest.raises(ProviderUnavailable):
        pay(route, journal.binding("sandbox", pinned=True))
    assert stripe.calls == 0
    assert not any(entry.startswith("bind") for entry in journal.entries)


def test_a_pinned_payment_waits_while_its_providers_circuit_is_open(
    clock: FixedClock, journal: Journal
) -> None:
    failures = [ProviderUnavailable("refused")] * 3
    stripe = ScriptedProvider("stripe", journal, *failures)
    sandbox = ScriptedProvider("sandbox", journal)
    route = route_of(clock, stripe, sandbox)
    for _ in range(3):
        pay(route, journal.binding("stripe"))  # each fails over to the sandbox
    journal.entries.clear()
    clock.advance(4_000)
    with pytest.raises(CircuitOpen) as raised:
        pay(route, journal.binding("stripe", pinned=True))
    assert raised.value.code == "circuit_open"
    assert raised.value.retry_after_s == 6.0, "until the circuit lets a probe through"
    assert journal.entries == []


def test_an_open_circuit_sends_new_payments_straight_to_the_next_provider(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, *[ProviderServerError("502")] * 3)
    sandbox = ScriptedProvider("sandbox", journal)
    route = route_of(clock, stripe, sandbox)
    for _ in range(3):
        with pytest.raises(ProviderServerError):
            pay(route, journal.binding("stripe"))
    journal.entries.clear()
    receipt = pay(route, journal.binding("stripe"))
    assert receipt.provider == "sandbox"
    assert journal.entries == [
        "bind sandbox: routed to sandbox after stripe: circuit open",
        "call sandbox",
    ]


def test_after_the_open_time_a_real_payment_probes_and_closes_the_circuit(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, *[ProviderUnavailable("refused")] * 3)
    sandbox = ScriptedProvider("sandbox", journal)
    route = route_of(clock, stripe, sandbox)
    for _ in range(3):
        pay(route, journal.binding("stripe"))
    clock.advance(10_000)
    journal.entries.clear()
    assert pay(route, journal.binding("stripe")).provider == "stripe"
    assert pay(route, journal.binding("stripe")).provider == "stripe"
    assert journal.entries == ["call stripe", "call stripe"]


def test_a_token_goes_only_to_the_provider_that_issued_it(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, ProviderUnavailable("refused"), prefix="pm_")
    sandbox = ScriptedProvider("sandbox", journal, prefix="tok_")
    with pytest.raises(ProviderUnavailable):
        pay(route_of(clock, stripe, sandbox), journal.binding("stripe"), token="pm_card_visa")
    assert sandbox.calls == 0


def test_a_source_no_provider_accepts_is_refused_without_a_call(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, prefix="pm_")
    with pytest.raises(ProviderRejected) as raised:
        pay(route_of(clock, stripe), journal.binding("stripe"), token="tok_visa")
    assert raised.value.code == "no_provider_for_source"
    assert journal.entries == []


def test_when_the_next_provider_cannot_be_recorded_it_is_not_called(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, ProviderUnavailable("refused"))
    sandbox = ScriptedProvider("sandbox", journal)
    journal.fail_binds = StoreUnavailable("database down")
    with pytest.raises(StoreUnavailable):
        pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert sandbox.calls == 0


def test_when_every_provider_refuses_the_last_refusal_is_raised(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal, ProviderUnavailable("refused"))
    sandbox = ScriptedProvider("sandbox", journal, RateLimited("429", retry_after_s=9))
    with pytest.raises(RateLimited) as raised:
        pay(route_of(clock, stripe, sandbox), journal.binding("stripe"))
    assert raised.value.retry_after_s == 9


def test_a_payment_pinned_to_a_provider_no_longer_configured_waits(
    clock: FixedClock, journal: Journal
) -> None:
    sandbox = ScriptedProvider("sandbox", journal)
    with pytest.raises(ProviderUnavailable) as raised:
        pay(route_of(clock, sandbox), journal.binding("stripe", pinned=True))
    assert raised.value.code == "provider_not_configured"
    assert sandbox.calls == 0


def test_a_bug_in_a_call_teaches_the_breaker_nothing(clock: FixedClock, journal: Journal) -> None:
    stripe = ScriptedProvider("stripe", journal, *[KeyError("bug")] * 5)
    route = route_of(clock, stripe)
    for _ in range(5):
        with pytest.raises(KeyError):
            pay(route, journal.binding("stripe"))
    breaker = route._breakers["stripe"]
    assert breaker.state is BreakerState.CLOSED


def test_a_route_naming_a_provider_twice_is_refused(clock: FixedClock, journal: Journal) -> None:
    with pytest.raises(ValueError, match="twice"):
        route_of(clock, ScriptedProvider("sandbox", journal), ScriptedProvider("sandbox", journal))


def test_a_pinned_payment_the_provider_already_has_is_not_sent_again(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal)
    earlier = ProviderReceipt("stripe", "pi_earlier")

    def recover(provider: ScriptedProvider) -> ProviderReceipt | None:
        journal.entries.append(f"lookup {provider.name}")
        return earlier

    receipt = pay(route_of(clock, stripe), journal.binding("stripe", pinned=True), recover=recover)
    assert receipt == earlier
    assert journal.entries == ["lookup stripe"]


def test_a_pinned_payment_the_provider_does_not_have_is_sent_with_its_key(
    clock: FixedClock, journal: Journal
) -> None:
    stripe = ScriptedProvider("stripe", journal)

    def recover(provider: ScriptedProvider) -> ProviderReceipt | None:
        journal.entries.append(f"lookup {provider.name}")
        return None

    receipt = pay(route_of(clock, stripe), journal.binding("stripe", pinned=True), recover=recover)
    assert receipt.reference == "stripe-ref"
    assert journal.entries == ["lookup stripe", "call stripe"]


def test_a_new_payment_is_sent_without_asking_first(clock: FixedClock, journal: Journal) -> None:
    stripe = ScriptedProvider("stripe", journal)

    def recover(_provider: ScriptedProvider) -> ProviderReceipt | None:
        raise AssertionError("a payment that was never sent is not looked up")

    pay(route_of(clock, stripe), journal.binding("stripe"), recover=recover)
    assert journal.entries == ["call stripe"]

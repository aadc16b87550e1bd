"""Retry decisions: pure `decide`, and the handler's path through the retry tiers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from common.envelope import (
    HEADER_ATTEMPTS,
    HEADER_OUTCOME_UNKNOWN,
    HEADER_RETRY_KEY_ID,
    InboundMessage,
)
from common.errors import (
    CircuitOpen,
    MessageExpired,
    MessageRejected,
    OutcomeUnknown,
    PaymentDeclined,
    PaymqError,
    ProviderConnectionLost,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from common.models import PaymentStatus
from workers.retries import MAX_WAIT_MS, GiveUp, Retry, RetryPolicy, decide

if TYPE_CHECKING:
    from tests.unit.conftest import Handled, Worker

POLICY = RetryPolicy(delays_ms=(1_000, 5_000, 30_000), max_attempts=6)


def test_attempt_n_waits_tier_n_then_the_last_tier():
    delays = [decide(ProviderUnavailable("down"), n, POLICY) for n in range(1, 6)]
    assert delays == [Retry(d, d) for d in (1_000, 5_000, 30_000, 30_000, 30_000)]


@pytest.mark.parametrize(
    ("error", "earlier_unknown", "in_doubt"),
    [
        (ProviderUnavailable("down"), False, False),
        (RateLimited("slow down", retry_after_s=1), False, False),
        (ProviderUnavailable("down"), True, True),
        (ProviderTimeout("no answer"), False, True),
        (ProviderServerError("500"), False, True),
        (ProviderConnectionLost("reset"), False, True),
        (OutcomeUnknown("?"), False, True),
    ],
)
def test_at_max_attempts_it_gives_up_in_doubt_only_if_an_outcome_was_unknown(
    error: PaymqError, earlier_unknown: bool, in_doubt: bool
):
    decision = decide(error, POLICY.max_attempts, POLICY, earlier_unknown=earlier_unknown)
    assert decision == GiveUp(in_doubt=in_doubt)


def test_an_unknown_outcome_is_retried_while_attempts_remain():
    assert decide(ProviderTimeout("no answer"), 1, POLICY) == Retry(1_000, 1_000)


@pytest.mark.parametrize(
    ("attempt", "retry_after_s", "delay_ms"),
    [
        (1, 0.2, 1_000),
        (1, 1, 1_000),
        (1, 1.5, 5_000),
        (1, 5, 5_000),
        (1, 6, 30_000),
        (3, 1, 30_000),
    ],
)
def test_rate_limits_wait_for_a_tier_at_least_as_long_as_retry_after(
    attempt: int, retry_after_s: float, delay_ms: int
):
    error = RateLimited("slow down", retry_after_s=retry_after_s)
    decision = decide(error, attempt, POLICY)
    assert isinstance(decision, Retry)
    assert decision.delay_ms == delay_ms
    assert decision.wait_ms >= retry_after_s * 1000


def test_a_retry_after_beyond_every_tier_is_never_retried_sooner_than_asked():
    # The message cycles through the last tier until its not-before time (retrystate.py).
    decision = decide(RateLimited("slow down", retry_after_s=3_600), 1, POLICY)
    assert isinstance(decision, Retry)
    assert decision.delay_ms == 30_000
    assert decision.wait_ms == 3_600_000


def test_an_infinite_retry_after_still_gives_a_decision():
    decision = decide(RateLimited("slow down", retry_after_s=float("inf")), 1, POLICY)
    assert isinstance(decision, Retry)
    assert decision.wait_ms == MAX_WAIT_MS


@pytest.mark.parametrize(
    "error",
    [
        PaymentDeclined("no", code="do_not_honor"),
        ProviderRejected("bad"),
        MessageRejected("forged"),
        MessageExpired("late"),
    ],
)
def test_permanent_errors_cannot_be_retried(error: PaymqError):
    with pytest.raises(ValueError, match="is permanent"):
        decide(error, 1, POLICY)


# --- through the handler ----------------------------------------------------------------------


@pytest.fixture
def run(worker: Worker, inbound: Callable[..., InboundMessage]) -> Callable[..., list[Handled]]:
    """Deliver `message`, then every retry copy back, answering with `answers` in turn
    (None: success)."""

    def run(message: InboundMessage, *answers: Exception | None) -> list[Handled]:
        worker.channel.script(*(a for a in answers if a is not None))
        rounds = [worker.handle(message)]
        while rounds[-1].retries:
            rounds.append(worker.handle(inbound(rounds[-1].retries[0])))
        return rounds

    return run


def test_a_transient_error_sends_the_same_signed_message_to_the_first_retry_tier(
    make_request: Callable[..., Any], worker: Worker
):
    _, message = make_request()
    worker.channel.script(ProviderUnavailable("refused"))
    handled = worker.handle(message)
    assert handled.status is None
    assert (handled.events, handled.dead_letters) == ([], [])
    [retry] = handled.retries
    assert (retry.exchange, retry.routing_key) == ("t.retry.1000ms", "card")
    assert (retry.body, retry.message_id, retry.message_type) == (
        message.body,
        message.message_id,
        message.message_type,
    )
    assert {k: v for k, v in retry.headers.items() if k in message.headers} == message.headers
    assert (retry.headers[HEADER_ATTEMPTS], retry.headers[HEADER_OUTCOME_UNKNOWN]) == (1, 0)
    assert retry.headers[HEADER_RETRY_KEY_ID] == "worker-1"


def test_transient_errors_climb_the_tiers_then_fail_without_dead_letter(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]]
):
    rounds = run(make_request()[1], *[ProviderUnavailable("refused")] * 3)
    assert [r.retries[0].exchange for r in rounds[:-1]] == ["t.retry.1000ms", "t.retry.5000ms"]
    assert [r.retries[0].headers[HEADER_ATTEMPTS] for r in rounds[:-1]] == [1, 2]
    final = rounds[-1]
    assert final.dead_letters == []
    result = final.result
    assert (result.status, result.attempts, result.code) == ("failed", 3, "provider_unavailable")


@pytest.mark.parametrize("unknown_at", [0, 1, 2])
def test_giving_up_after_any_unknown_outcome_is_in_doubt_for_the_reconciler(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]], unknown_at: int
):
    answers: list[PaymqError] = [ProviderUnavailable("refused")] * 3
    answers[unknown_at] = ProviderTimeout("read timeout")
    rounds = run(make_request()[1], *answers)
    flags = [r.retries[0].headers[HEADER_OUTCOME_UNKNOWN] for r in rounds[:-1]]
    assert flags == [int(i >= unknown_at) for i in range(2)]
    final = rounds[-1]
    assert final.result.status is PaymentStatus.IN_DOUBT
    assert final.result.code == answers[-1].code
    assert final.dead_letters == []


def test_a_transient_error_then_success_succeeds_on_the_retry(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]]
):
    rounds = run(make_request()[1], ProviderServerError("502"), None)
    assert (rounds[-1].result.status, rounds[-1].result.attempts) == ("succeeded", 2)


def test_every_attempt_asks_the_provider_with_the_same_idempotency_key(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]], worker: Worker
):
    run(make_request()[1], ProviderTimeout("t"), ProviderUnavailable("u"), None)
    keys = {context.idempotency_key for _, context in worker.channel.calls}
    assert len(worker.channel.calls) == 3
    assert len(keys) == 1
    assert keys.pop().startswith("paymq_")


def test_a_rate_limit_waits_in_a_tier_at_least_as_long_as_retry_after(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]]
):
    rounds = run(make_request()[1], RateLimited("429", retry_after_s=2), None)
    assert rounds[0].retries[0].exchange == "t.retry.5000ms"


def test_an_open_circuit_is_no_attempt_the_payment_waits_until_it_may_close(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]]
):
    open_circuit = CircuitOpen("every circuit open", retry_after_s=4)
    rounds = run(make_request()[1], open_circuit, open_circuit, None)
    assert [r.retries[0].exchange for r in rounds[:2]] == ["t.retry.5000ms"] * 2
    assert (rounds[-1].result.status, rounds[-1].result.attempts) == ("succeeded", 1)


def test_an_unexpected_exception_from_the_channel_counts_as_an_unknown_outcome(
    make_request: Callable[..., Any], run: Callable[..., list[Handled]]
):
    rounds = run(make_request()[1], *[RuntimeError("bug")] * 3)
    assert rounds[0].retries[0].headers[HEADER_OUTCOME_UNKNOWN] == 1
    assert (rounds[-1].result.status, rounds[-1].result.code) == ("in_doubt", "internal_error")


@pytest.mark.parametrize(
    ("first_error", "status"),
    [(ProviderTimeout("t"), "in_doubt"), (ProviderUnavailable("u"), "expired")],
)
def test_a_retry_arriving_after_expiry_is_expired_or_in_doubt_after_an_unknown_outcome(
    make_request: Callable[..., Any],
    worker: Worker,
    inbound: Callable[..., InboundMessage],
    first_error: Exception,
    status: str,
):
    # Given a payment whose first attempt ended in a transient error
    now = worker.clock.now_ms()
    _, message = make_request(created_at_ms=now - 1_000, expires_at_ms=now + 500)
    worker.channel.script(first_error)
    [retry] = worker.handle(message).retries
    # When the retry copy comes back after the payment expired
    worker.clock.advance(1_000)
    handled = worker.handle(inbound(retry))
    # Then the provider is not asked again and the result says why
    assert len(worker.channel.calls) == 1
    assert (handled.result.status, handled.result.attempts) == (status, 1)
    assert handled.events[0].routing_key == f"card.{status}"
    # an expired payment is kept for an operator; an in-doubt one is the reconciler's
    assert len(handled.dead_letters) == (1 if status == "expired" else 0)

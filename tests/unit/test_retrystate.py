"""Retry state on retry copies: set and signed by a worker, ignored when anyone else sets it,
and a long Retry-After honoured by cycling through the last tier without calling the provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.envelope import (
    HEADER_ATTEMPTS,
    HEADER_NOT_BEFORE_MS,
    HEADER_OUTCOME_UNKNOWN,
    HEADER_RETRY_SIGNATURE,
    InboundMessage,
)
from common.errors import ProviderTimeout, ProviderUnavailable, RateLimited
from common.keyring import Keyring
from common.signing import Signer
from tests.unit.conftest import Worker
from workers.retries import NEW, RetryState, read_state, state_headers


def test_a_worker_signed_state_is_read_back(
    make_request: Callable[..., Any],
    keyring: Keyring,
    signer: Callable[[str], Signer],
    inbound: Callable[..., InboundMessage],
):
    _, message = make_request()
    state = RetryState(attempts=2, outcome_unknown=True, not_before_ms=123)
    headers = state_headers(message, state, signer("worker-1"))
    copy = inbound(message.resend("t.retry.1000ms", "card", headers))
    assert read_state(copy, keyring, "card") == state


def test_a_state_set_by_a_producer_key_is_ignored(
    make_request: Callable[..., Any],
    keyring: Keyring,
    signer: Callable[[str], Signer],
    inbound: Callable[..., InboundMessage],
):
    _, message = make_request()
    forged = state_headers(message, RetryState(attempts=9), signer("producer-1"))
    copy = inbound(message.resend("t.retry.1000ms", "card", forged))
    assert read_state(copy, keyring, "card") is NEW


def test_changing_a_signed_state_value_voids_it(
    make_request: Callable[..., Any],
    keyring: Keyring,
    signer: Callable[[str], Signer],
    inbound: Callable[..., InboundMessage],
):
    _, message = make_request()
    headers = state_headers(message, RetryState(attempts=1), signer("worker-1"))
    tampered = {**headers, HEADER_ATTEMPTS: 4}
    copy = inbound(message.resend("t.retry.1000ms", "card", tampered))
    assert read_state(copy, keyring, "card") is NEW


def test_a_state_moved_to_another_message_is_ignored(
    make_request: Callable[..., Any],
    keyring: Keyring,
    signer: Callable[[str], Signer],
    inbound: Callable[..., InboundMessage],
):
    _, first = make_request()
    _, second = make_request()
    headers = state_headers(first, RetryState(outcome_unknown=True), signer("worker-1"))
    copy = inbound(second.resend("t.retry.1000ms", "card", headers))
    assert read_state(copy, keyring, "card") is NEW


def test_unsigned_retry_headers_from_a_producer_do_not_shrink_the_retry_budget(
    make_request: Callable[..., Any], worker: Worker, inbound: Callable[..., InboundMessage]
):
    # Given a producer that claims the payment already used its attempts and was in doubt
    _, message = make_request()
    claimed = message.resend(
        message.exchange, message.routing_key, {HEADER_ATTEMPTS: 3, HEADER_OUTCOME_UNKNOWN: 1}
    )
    worker.channel.script(ProviderUnavailable("down"))
    # When the worker handles it, the claim counts for nothing: a first attempt, then a retry
    handled = worker.handle(inbound(claimed))
    [retry] = handled.retries
    assert (retry.headers[HEADER_ATTEMPTS], retry.headers[HEADER_OUTCOME_UNKNOWN]) == (1, 0)
    assert HEADER_RETRY_SIGNATURE in retry.headers


def test_a_retry_after_longer_than_every_tier_waits_without_calling_the_provider(
    make_request: Callable[..., Any], worker: Worker, inbound: Callable[..., InboundMessage]
):
    # Given a payment valid for two hours and a provider that asks for one (tiers end at 30 s)
    now = worker.clock.now_ms()
    _, message = make_request(created_at_ms=now, expires_at_ms=now + 7_200_000)
    worker.channel.script(RateLimited("429", retry_after_s=3_600), None)
    [retry] = worker.handle(message).retries
    assert retry.exchange == "t.retry.30000ms"
    not_before_ms = retry.headers[HEADER_NOT_BEFORE_MS]
    assert not_before_ms == worker.clock.now_ms() + 3_600_000
    # When the copy comes back after 30 s, it goes round again and the provider is not called
    worker.clock.advance(30_000)
    [again] = worker.handle(inbound(retry)).retries
    assert again.exchange == "t.retry.30000ms"
    assert again.headers[HEADER_NOT_BEFORE_MS] == not_before_ms
    assert len(worker.channel.calls) == 1
    # Then once the hour has passed, the second attempt is made and succeeds
    worker.clock.advance(3_600_000)
    final = worker.handle(inbound(again))
    assert (final.result.status, final.result.attempts) == ("succeeded", 2)
    assert len(worker.channel.calls) == 2


def test_an_unknown_outcome_is_remembered_across_retries(
    make_request: Callable[..., Any], worker: Worker, inbound: Callable[..., InboundMessage]
):
    _, message = make_request()
    worker.channel.script(ProviderTimeout("t"), ProviderUnavailable("u"))
    [first] = worker.handle(message).retries
    [second] = worker.handle(inbound(first)).retries
    assert (second.headers[HEADER_ATTEMPTS], second.headers[HEADER_OUTCOME_UNKNOWN]) == (2, 1)

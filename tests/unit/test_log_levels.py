"""The level a worker logs each handled delivery at, once it is settled (workers/consumer.py
logs the disposition's summary at the disposition's level): WARNING for what an operator should
look at (a refusal or a dead letter, an expired payment, one failed or in doubt, a provider's
error that sends it to a retry tier), INFO for a payment that went its normal way, a decline
included: that is the payer's bank answering, not a fault."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from common.envelope import InboundMessage
from common.errors import (
    PaymentDeclined,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from common.models import PaymentStatus
from workers.providers.base import ProviderReceipt
from workers.results import Outcome

if TYPE_CHECKING:
    from tests.unit.conftest import Handled, Worker


@pytest.mark.parametrize(
    ("status", "level"),
    [
        (PaymentStatus.SUCCEEDED, logging.INFO),
        (PaymentStatus.PENDING, logging.INFO),
        (PaymentStatus.DECLINED, logging.INFO),
        (PaymentStatus.REJECTED, logging.WARNING),
        (PaymentStatus.EXPIRED, logging.WARNING),
        (PaymentStatus.FAILED, logging.WARNING),
        (PaymentStatus.IN_DOUBT, logging.WARNING),
    ],
)
def test_each_outcome_has_the_level_an_operator_needs(status: PaymentStatus, level: int) -> None:
    assert Outcome(status, attempts=1).log_level == level


@pytest.mark.parametrize(
    ("answer", "status", "level"),
    [
        (None, PaymentStatus.SUCCEEDED, logging.INFO),
        (ProviderReceipt("fake", "ch_1", settled=False), PaymentStatus.PENDING, logging.INFO),
        (PaymentDeclined("no funds", code="insufficient_funds"), "declined", logging.INFO),
        (ProviderRejected("bad request", code="invalid_amount"), "failed", logging.WARNING),
        (ProviderServerError("502"), None, logging.WARNING),
        (ProviderUnavailable("refused"), None, logging.WARNING),
    ],
    ids=["succeeded", "pending", "declined", "provider-rejected", "retry-502", "retry-refused"],
)
def test_a_provider_answer_is_logged_at_info_unless_it_is_an_error(
    make_request: Callable[..., Any],
    worker: Worker,
    answer: ProviderReceipt | Exception | None,
    status: PaymentStatus | str | None,
    level: int,
) -> None:
    if answer is not None:
        worker.channel.script(answer)
    handled = worker.handle(make_request()[1])
    assert handled.status == status
    assert handled.disposition.level == level


def test_a_forged_message_is_rejected_and_dead_lettered_at_warning(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    _, message = make_request()
    forged = dataclasses.replace(message, body=message.body.replace(b"1050", b"9050"))
    handled = worker.handle(forged)
    assert (handled.status, len(handled.dead_letters)) == (PaymentStatus.REJECTED, 1)
    assert handled.disposition.level == logging.WARNING


def test_an_expired_payment_is_dead_lettered_at_warning(
    make_request: Callable[..., Any], worker: Worker
) -> None:
    now = worker.clock.now_ms()
    _, message = make_request(created_at_ms=now - 7_200_000, expires_at_ms=now - 1)
    handled = worker.handle(message)
    assert (handled.status, len(handled.dead_letters)) == (PaymentStatus.EXPIRED, 1)
    assert handled.disposition.level == logging.WARNING


def test_a_payment_given_up_in_doubt_is_logged_at_warning(
    make_request: Callable[..., Any], worker: Worker, inbound: Callable[..., InboundMessage]
) -> None:
    worker.channel.script(*[ProviderTimeout("read timeout")] * 3)
    rounds: list[Handled] = [worker.handle(make_request()[1])]
    while rounds[-1].retries:
        rounds.append(worker.handle(inbound(rounds[-1].retries[0])))
    assert rounds[-1].status is PaymentStatus.IN_DOUBT
    assert [r.disposition.level for r in rounds] == [logging.WARNING] * len(rounds)

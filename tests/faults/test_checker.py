"""The checker's accounting, on hand-made observations: pure, no broker, no processes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from common.models import PaymentResult, PaymentStatus, result_event_id
from common.money import Money
from paymq_tools.chaos.checker import check
from paymq_tools.chaos.observations import (
    DeadLetter,
    Expect,
    Observations,
    Published,
    ReceivedEvent,
)
from paymq_tools.chaos.queues import dead_letter_reason

PAY_A = str(uuid.UUID(int=1))
PAY_B = str(uuid.UUID(int=2))
MSG_A, MSG_B = "msg-a", "msg-b"


def published(*, confirmed: bool = True, expect: Expect = Expect.SUCCEEDED) -> list[Published]:
    return [
        Published(PAY_A, MSG_A, expect, confirmed),
        Published(PAY_B, MSG_B, Expect.SUCCEEDED, True),
    ]


def event(
    payment_id: str, status: PaymentStatus, *, occurred_ms: int = 0, attempts: int = 1
) -> ReceivedEvent:
    result = PaymentResult(
        event_id=result_event_id(payment_id, status),
        payment_id=uuid.UUID(payment_id),
        request_message_id=MSG_A if payment_id == PAY_A else MSG_B,
        idempotency_key="key",
        merchant_reference="ref",
        channel="card",
        status=status,
        amount=Money(amount_minor=100, currency="USD"),
        attempts=attempts,
        payment_created_at=None,
        occurred_at=datetime.fromtimestamp(1_764_000_000 + occurred_ms / 1000, UTC),
    )
    return ReceivedEvent(str(result.event_id), result.model_dump_json().encode(), result)


def effect(payment_id: str) -> dict[str, object]:
    return {"id": f"ch_{uuid.uuid4().hex}", "kind": "charge", "reference": payment_id}


HEALTHY = Observations(
    published=published(),
    events=[event(PAY_A, PaymentStatus.SUCCEEDED), event(PAY_B, PaymentStatus.SUCCEEDED)],
    effects=[effect(PAY_A), effect(PAY_B)],
    dead_letters=[],
)
"""Two payments, each succeeded once with one effect: nothing to report."""


def healthy(**changes: Any) -> Observations:
    return dataclasses.replace(HEALTHY, **changes)


def test_every_payment_with_one_result_and_one_effect_has_no_violations() -> None:
    report = check(healthy())

    assert report.violations() == []
    assert (report.payments, report.confirmed) == (2, 2)
    assert report.final_statuses == {"succeeded": 2}


def test_a_confirmed_payment_without_a_result_is_lost() -> None:
    report = check(healthy(events=[event(PAY_B, PaymentStatus.SUCCEEDED)], effects=[]))

    assert report.lost == (PAY_A,)
    assert "lost" in report.violations()[0]


def test_an_unconfirmed_payment_without_a_result_is_not_lost() -> None:
    report = check(
        healthy(
            published=published(confirmed=False),
            events=[event(PAY_B, PaymentStatus.SUCCEEDED)],
            effects=[effect(PAY_B)],
        )
    )

    assert report.lost == ()
    assert report.confirmed == 1


def test_two_effects_for_one_payment_are_duplicated_effects() -> None:
    report = check(healthy(effects=[effect(PAY_A), effect(PAY_A), effect(PAY_B)]))

    assert report.duplicated_effects == (PAY_A,)


def test_one_effect_at_each_of_two_providers_is_a_duplicated_effect() -> None:
    at_stripe = {"reference": PAY_A, "provider": "stripe"}
    report = check(healthy(effects=[effect(PAY_A), at_stripe, effect(PAY_B)]))
    assert report.duplicated_effects == (PAY_A,)
    assert report.effects_by_provider == {"sandbox": 2, "stripe": 1}


def test_two_different_terminal_statuses_conflict() -> None:
    events = [
        event(PAY_A, PaymentStatus.SUCCEEDED),
        event(PAY_A, PaymentStatus.FAILED),
        event(PAY_B, PaymentStatus.SUCCEEDED),
    ]
    report = check(healthy(events=events))

    assert report.conflicting_statuses == (PAY_A,)
    assert report.conflicting == 1


def test_copies_of_one_event_with_different_bytes_break_i5() -> None:
    events = [
        event(PAY_A, PaymentStatus.SUCCEEDED, occurred_ms=1),
        event(PAY_A, PaymentStatus.SUCCEEDED, occurred_ms=2, attempts=2),
        event(PAY_B, PaymentStatus.SUCCEEDED),
    ]
    report = check(healthy(events=events))

    assert report.unstable_events == (PAY_A,)
    assert report.reissued_events == 1
    assert report.redeliveries == 0
    assert "attempts, occurred_at" in report.samples[PAY_A]


def test_byte_identical_copies_are_redeliveries_not_violations() -> None:
    copy = event(PAY_A, PaymentStatus.SUCCEEDED)
    report = check(healthy(events=[copy, copy, copy, event(PAY_B, PaymentStatus.SUCCEEDED)]))

    assert report.violations() == []
    assert report.redeliveries == 2


def test_an_effect_reported_as_failed_is_unreported() -> None:
    events = [event(PAY_A, PaymentStatus.FAILED), event(PAY_B, PaymentStatus.SUCCEEDED)]
    report = check(healthy(events=events))

    assert report.effects_unreported == (PAY_A,)
    assert report.unexpected_outcomes == (PAY_A,)


def test_an_effect_without_any_result_event_is_charged_without_a_published_result() -> None:
    report = check(healthy(events=[event(PAY_B, PaymentStatus.SUCCEEDED)]))

    assert report.charged_unpublished == (PAY_A,)
    assert report.lost == (PAY_A,)
    assert f"1 charged without a published result (I6), e.g. {PAY_A} (results none; effects 1)" in (
        report.violations()
    )


def test_an_effect_reported_only_as_in_doubt_was_published() -> None:
    events = [event(PAY_A, PaymentStatus.IN_DOUBT), event(PAY_B, PaymentStatus.SUCCEEDED)]
    report = check(healthy(events=events))

    assert report.charged_unpublished == ()
    assert report.in_doubt_unresolved == (PAY_A,)


def test_an_effect_reported_as_failed_was_published_though_unreported() -> None:
    events = [event(PAY_A, PaymentStatus.FAILED), event(PAY_B, PaymentStatus.SUCCEEDED)]
    report = check(healthy(events=events))

    assert report.charged_unpublished == ()
    assert report.effects_unreported == (PAY_A,)


def test_a_payment_without_effect_or_result_is_lost_not_charged() -> None:
    report = check(healthy(events=[event(PAY_B, PaymentStatus.SUCCEEDED)], effects=[effect(PAY_B)]))

    assert report.lost == (PAY_A,)
    assert report.charged_unpublished == ()


def test_an_event_that_failed_verification_does_not_count_as_published() -> None:
    forged = ReceivedEvent("forged", b"{}", None)
    report = check(healthy(events=[forged, event(PAY_B, PaymentStatus.SUCCEEDED)]))

    assert report.charged_unpublished == (PAY_A,)


def test_an_unconfirmed_payment_that_was_charged_still_needs_its_result() -> None:
    # The broker took the request although it never confirmed it, and a worker charged it.
    report = check(
        healthy(
            published=published(confirmed=False), events=[event(PAY_B, PaymentStatus.SUCCEEDED)]
        )
    )

    assert report.lost == ()
    assert report.charged_unpublished == (PAY_A,)


def test_a_decline_that_was_expected_is_no_violation() -> None:
    report = check(
        healthy(
            published=published(expect=Expect.DECLINED),
            events=[event(PAY_A, PaymentStatus.DECLINED), event(PAY_B, PaymentStatus.SUCCEEDED)],
            effects=[effect(PAY_B)],
        )
    )

    assert report.violations() == []
    assert report.final_statuses == {"declined": 1, "succeeded": 1}


def test_in_doubt_without_a_reconciler_is_accounted_for_but_unresolved() -> None:
    events = [event(PAY_A, PaymentStatus.IN_DOUBT), event(PAY_B, PaymentStatus.SUCCEEDED)]
    letters = [DeadLetter(MSG_A, "provider_server_error")]
    report = check(healthy(events=events, dead_letters=letters))

    assert report.violations() == []
    assert report.in_doubt_unresolved == (PAY_A,)
    assert report.dead_lettered == {"provider_server_error": 1}


def test_in_doubt_left_after_a_reconciler_ran_is_stuck() -> None:
    events = [event(PAY_A, PaymentStatus.IN_DOUBT), event(PAY_B, PaymentStatus.SUCCEEDED)]
    report = check(healthy(events=events, reconciler_ran=True))

    assert report.stuck == (PAY_A,)
    assert report.lost == ()


def test_in_doubt_resolved_by_a_reconciler_counts_as_resolved() -> None:
    events = [
        event(PAY_A, PaymentStatus.IN_DOUBT),
        event(PAY_A, PaymentStatus.SUCCEEDED),
        event(PAY_B, PaymentStatus.SUCCEEDED),
    ]
    report = check(healthy(events=events, reconciler_ran=True))

    assert report.violations() == []
    assert report.in_doubt_resolved == 1


def test_a_payment_left_in_a_queue_is_stuck_not_lost() -> None:
    report = check(
        healthy(events=[event(PAY_B, PaymentStatus.SUCCEEDED)], effects=[], leftovers=[MSG_A])
    )

    assert report.stuck == (PAY_A,)
    assert report.lost == ()


def test_an_unknown_message_left_in_a_queue_is_a_violation() -> None:
    report = check(healthy(leftovers=["someone-else"]))

    assert report.stray_leftovers == 1
    assert report.violations() == ["1 unknown messages left in work or retry queues"]


def test_a_poison_message_dead_lettered_by_the_broker_is_lost_and_undeserved() -> None:
    letters = [DeadLetter(MSG_A, "broker:delivery_limit")]
    report = check(
        healthy(events=[event(PAY_B, PaymentStatus.SUCCEEDED)], effects=[], dead_letters=letters)
    )

    assert report.lost == (PAY_A,)
    assert report.undeserved_dead_letters == (PAY_A,)
    assert report.dead_lettered == {"broker:delivery_limit": 1}


def test_an_event_that_failed_verification_is_a_violation() -> None:
    forged = ReceivedEvent("forged", b"{}", None)
    report = check(healthy(events=[*healthy().events, forged]))

    assert report.untrusted_events == 1
    assert report.violations() == ["1 result events failed verification"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"paymq-dead-letter-code": "provider_timeout"}, "provider_timeout"),
        ({"x-first-death-reason": b"delivery_limit", "x-death": []}, "broker:delivery_limit"),
        ({"x-death": []}, "broker:delivery_limit"),
        ({}, "unknown"),
    ],
)
def test_a_dead_letter_reason_is_the_workers_code_or_the_brokers(
    headers: dict[str, object], reason: str
) -> None:
    assert dead_letter_reason(headers) == reason
